"""UDG: user-dependent gating and meta-learned embeddings for new users (SPEC §6-§7)."""

from tfrs_userlevel.udg.gating import MetaEmbeddingGenerator, UserDependentGating

__all__ = ["MetaEmbeddingGenerator", "UserDependentGating"]
