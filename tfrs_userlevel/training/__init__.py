"""Training runs: from a `TrainConfig` to a model directory with metrics.json.

One job per module, each importing only those listed before it:

* `artifacts`: the model directory's layout, atomic JSON writes, `load_trained`;
* `train_config`: `TrainConfig`, the validated options of a run;
* `builders`: the model a configuration describes;
* `callbacks`: epoch timer, learning-rate log, best weights, schedules, NaN guard;
* `resume`: what a killed run needs to continue exactly;
* `inputs`: in-memory, streamed and parameter-server examples behind one interface;
* `loop`: `run`, the run itself.
"""

from tfrs_userlevel.config.errors import ConfigError
from tfrs_userlevel.training.artifacts import load_trained, versions, write_json_atomic
from tfrs_userlevel.training.builders import (
    ModelBuilder,
    build_gating,
    build_model,
    build_user_level,
    gating_sizes,
)
from tfrs_userlevel.training.callbacks import (
    BestWeights,
    EarlyStopping,
    EpochTimer,
    LearningRateLogger,
    NonFiniteGuard,
    NonFiniteLossError,
    ReduceLROnPlateau,
    schedule_callbacks,
)
from tfrs_userlevel.training.inputs import (
    Batches,
    InMemoryInput,
    ParameterServerInput,
    StreamedInput,
    TrainingInput,
)
from tfrs_userlevel.training.loop import run
from tfrs_userlevel.training.resume import TrainingState, backed_up_epochs
from tfrs_userlevel.training.train_config import (
    BACKBONE_SHARED_OPTIONS,
    DERIVED_FIELDS,
    DERIVED_FROM,
    GPREC_OPTIONS,
    LR_SCHEDULES,
    SCHEDULE_MONITORS,
    TRAIN_FIELDS,
    USER_LEVELS,
    TrainConfig,
)

# The order the modules import each other in (a test holds every import to it).
LAYERS = ("artifacts", "train_config", "builders", "callbacks", "resume", "inputs", "loop")

__all__ = [
    "BACKBONE_SHARED_OPTIONS", "DERIVED_FIELDS", "DERIVED_FROM", "GPREC_OPTIONS", "LAYERS",
    "LR_SCHEDULES", "SCHEDULE_MONITORS", "TRAIN_FIELDS", "USER_LEVELS", "Batches",
    "BestWeights", "ConfigError", "EarlyStopping", "EpochTimer", "InMemoryInput",
    "LearningRateLogger", "ModelBuilder", "NonFiniteGuard", "NonFiniteLossError",
    "ParameterServerInput", "ReduceLROnPlateau", "StreamedInput", "TrainConfig",
    "TrainingInput", "TrainingState", "backed_up_epochs", "build_gating", "build_model",
    "build_user_level", "gating_sizes", "load_trained", "run", "schedule_callbacks",
    "versions", "write_json_atomic",
]
