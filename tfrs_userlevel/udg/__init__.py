"""UDG: user-dependent gating and meta-learned embeddings for new users (docs/udg.md)."""

from tfrs_userlevel.udg.gating import MetaEmbeddingGenerator, UserDependentGating

__all__ = ["MetaEmbeddingGenerator", "UserDependentGating"]
