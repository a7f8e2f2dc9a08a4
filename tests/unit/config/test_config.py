"""The run configuration: validation with paths, presets, and options read from the layers.

No data set is needed: every tree here is written by the test."""


import numpy as np
import pytest

from tfrs_userlevel.backbones import BACKBONES
from tfrs_userlevel.baselines import BASELINES
from tfrs_userlevel.config import ConfigError, components, load_run_config
from tfrs_userlevel.features import FeatureSpec, Field
from tfrs_userlevel.gprec.layer import GPRec
from tfrs_userlevel.gprec.presets import PRESETS as GPREC_PRESETS
from tfrs_userlevel.udg.gating import UserDependentGating


def tree(**model):
    return {"data": {"format": "csv", "files": "clicks.csv", "split": {"by": "ratio"},
                     "label": {"column": "click"},
                     "fields": [{"name": "uid", "role": "user_personal"},
                                {"name": "age", "role": "user_other"},
                                {"name": "video", "role": "item"},
                                {"name": "tab", "role": "context"}]},
            "model": model, "train": {"epochs": 3}}


@pytest.mark.parametrize("override, message", [
    ("model.user_level.grups=40",
     r"model\.user_level\.grups: unknown key \(did you mean groups\?\)"),
    ("train.epoch=3", r"train\.epoch: unknown key \(did you mean epochs\?\)"),
    ("data.split.seeed=1", r"data\.split\.seeed: unknown key \(did you mean seed\?\)"),
    ("data.fields.1.rol=item", r"data\.fields\.1\.rol: unknown key \(did you mean role\?\)"),
    ("data.labell={column: y}", r"data\.labell: unknown key \(did you mean label\?\)"),
    ("model.backbone.cros_layers=2", r"model\.backbone\.cros_layers: unknown key"),
    ("model.backbone.name=dnc", r"model\.backbone\.name: 'dnc' is not a backbone.*'dcn'"),
    ("model.user_level.name=gprc", r"model\.user_level\.name: 'gprc'.*did you mean gprec"),
    ("model.user_level.strategy=mix", r"model\.user_level: GPRec: strategy must be one of"),
    ("model.user_level.groups=many", r"model\.user_level\.groups: .*valid integer.*'many'"),
    ("model.user_level.preset=tuned", r"model\.user_level\.preset: unknown preset 'tuned'; "
                                      r"valid presets are \['paper', 'recommended'\]"),
    ("data.fields.0.role=viewer", r"data\.fields\.0\.role: Input should be 'item'"),
    ("data.format=xlsx", r"data\.format: Input should be 'csv', 'parquet', 'tfrecord'"),
    ("data.split={by: random}", r"data\.split: .*'ratio', 'column', 'time'"),
    ("data.split.train=0.9", r"data\.split: train \+ validation \+ test must be 1, got 1.1$"),
    ("train.epochs=0", r"train: epochs must be >= 1"),
    ("model.backbone.name=din", r"model\.backbone\.name: din attends over a click history"),
    ("data.fields.2.role=behavior", r"data: field 'video': role behavior \(a click history\)"),
])
def test_bad_keys_and_values_are_refused_with_their_path(override, message):
    base = tree(user_level={"name": "gprec"})
    with pytest.raises(ConfigError, match=message):
        load_run_config(base, ["model.backbone.name=dcn", override]
                        if "cros" in override else [override])


def test_set_overrides_keys_lists_and_whole_sections():
    config = load_run_config(tree(), ["model.user_level={name: gprec, groups: 12}",
                                      "model.backbone.hidden_units=[32, 8]",
                                      "data.fields.3.hash_buckets=100", "train.seed=7"])
    assert config.model.user_level == {"name": "gprec", "preset": "recommended", "groups": 12}
    assert config.model.backbone == {"name": "mlp", "hidden_units": [32, 8]}
    assert config.data.fields[3].hash_buckets == 100 and config.train.seed == 7
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_run_config(tree(), ["train.seed"])
    with pytest.raises(ConfigError, match="data.fields is a list of 4; '9' is not an index"):
        load_run_config(tree(), ["data.fields.9.role=item"])


def test_a_module_the_fields_cannot_feed_is_refused_with_the_missing_role():
    no_personal = tree(user_level={"name": "udg"})
    no_personal["data"]["fields"][0]["role"] = "user_other"
    with pytest.raises(ConfigError, match="UDG .* needs a field with role user_personal"):
        load_run_config(no_personal)
    with pytest.raises(ConfigError, match="individual preference r_p reads the user_personal"):
        load_run_config(dict(no_personal, model={"user_level": {"name": "gprec"}}))
    # Without r_p, GPRec needs only user fields.
    load_run_config(dict(no_personal, model={"user_level": {"name": "gprec",
                                                            "individual": False}}))
    no_users = tree(user_level={"name": "gprec", "individual": False})
    no_users["data"]["fields"] = [{"name": "video", "role": "item"}]
    with pytest.raises(ConfigError, match="no field has role user_personal or user_other"):
        load_run_config(no_users)
    with pytest.raises(ConfigError, match="meta-embedding generator reads the user's profile"):
        only_id = tree(user_level={"name": "udg", "meta": True})
        only_id["data"]["fields"] = [{"name": "uid", "role": "user_personal"},
                                     {"name": "video", "role": "item"}]
        load_run_config(only_id)
    with pytest.raises(ConfigError, match=r"model\.baseline\.domain_field: mmoe divides users "
                                          r"by this field, and 'gender' is not one of"):
        load_run_config(tree(baseline={"name": "mmoe"}))
    load_run_config(tree(baseline={"name": "mmoe", "domain_field": "age"}))


def test_presets_in_python_and_in_the_file_build_the_same_layer():
    recommended = GPRec.from_preset("recommended", groups=40)
    assert recommended.strategy == "ensemble" and recommended.groups == 40
    for key, value in GPREC_PRESETS["recommended"].items():
        got = recommended.get_config()[key]
        assert got == (list(value) if isinstance(value, tuple) else value), key
    assert GPRec.from_preset("paper", name="g").get_config() == GPRec(name="g").get_config()
    with pytest.raises(ValueError, match="unknown preset 'best'"):
        GPRec.from_preset("best")
    gating = UserDependentGating.from_preset("recommended", num_users=5)
    assert (gating.l2, gating.gate_scale) == (3e-4, 2.0)

    spec = FeatureSpec([Field("uid", "string", "user_personal"), Field("age", "int64",
                                                                       "user_other"),
                        Field("video", "string", "item"), Field("tab", "string", "context")])
    vocabularies = {"uid": ["a", "b"], "age": [1, 2], "video": ["x"], "tab": ["t"]}
    for preset in ("paper", "recommended"):
        config = load_run_config(tree(user_level={"name": "gprec", "preset": preset}))
        built = config.build_model(spec, vocabularies, 0.25).user_level.get_config()
        direct = GPRec.from_preset(preset, embedding_dim=16,
                                   output_bias=float(np.log(0.25 / 0.75)),
                                   name="gprec").get_config()
        assert built == direct
    # A file without a preset gets the recommended form, and the schedule that goes with it.
    config = load_run_config(tree(user_level={"name": "gprec"}))
    assert config.model.user_level["preset"] == "recommended"
    assert config.train_config().schedule_monitor == "backbone_auc"
    assert load_run_config(tree(user_level={"name": "gprec", "preset": "paper"})
                           ).train_config().schedule_monitor == "auc"


def _changed_value(annotation, default):
    """A valid value other than the default, by the option's type."""
    text = str(annotation)
    if default is None and "int" in text and "Sequence" not in text:
        return 3
    if default is None and "float" in text:
        return 0.05
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default / 2 + 0.01
    if isinstance(default, tuple | list) or "Sequence[int]" in text:
        return [3, 5]
    return None


CHOICES = {"strategy": "dp", "reduce": "sum", "contrast": "flipped", "base": "embeddings",
           "group_embedding": "single", "ensemble_average": "logit", "activation": "tanh",
           "structure": "parallel", "condition": "user", "group_parameters": "kernel",
           "prior": "user"}


@pytest.mark.parametrize("kind, name", [
    *[("backbone", n) for n in sorted(BACKBONES)],
    *[("baseline", n) for n in sorted(BASELINES)],
    ("gprec", "gprec"), ("udg", "udg")])
def test_every_option_is_reachable_and_lands_unchanged_in_get_config(kind, name):
    """Each constructor option (read from the signature, not from a list kept here) set
    through the configuration arrives in the built layer's get_config as given."""
    parameters = components.parameters(components.factories(kind)[name], kind)
    assert parameters, name
    checked = 0
    for option, (annotation, default) in parameters.items():
        value = CHOICES.get(option, _changed_value(annotation, default))
        if value is None or value == default:
            continue
        section = {"name": name, option: value}
        if kind in ("gprec", "udg"):
            section["preset"] = "paper"
        try:
            validated = components.validate_component(kind, section, ("model", kind))
        except ConfigError as error:
            # A value that only fits with other options (the layer's own checks) is
            # refused with the path; every option must still be a known key.
            assert "unknown key" not in str(error), error
            continue
        assert validated[option] == value
        probe = {k: v for k, v in components._PROBE_VALUES.items()
                 if k in components._accepted(kind, name)}
        layer = components.build(kind, name, validated.get("preset"),
                                 {**probe, **{k: v for k, v in validated.items()
                                              if k not in ("name", "preset")}})
        config = layer.get_config()
        if option in config:
            landed = config[option]
            assert landed == value or list(np.ravel(landed)) == list(np.ravel(value)), \
                (option, landed, value)
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("strategy", ["ensemble", "input", "dp"])
def test_the_recommended_preset_is_train_pys_default_for_each_strategy(strategy):
    """GPRec.from_preset("recommended", strategy=...) builds the layer that train.py's
    flags build by default for that strategy (TrainConfig's per-strategy defaults)."""
    from tfrs_userlevel.training import TrainConfig, build_user_level

    legacy = build_user_level(TrainConfig(user_level="gprec", strategy=strategy), 0.3)
    preset = GPRec.from_preset("recommended", strategy=strategy, embedding_dim=16,
                               output_bias=float(np.log(0.3 / 0.7)), name="gprec")
    assert preset.get_config() == legacy.get_config()
    config = load_run_config(tree(user_level={"name": "gprec", "strategy": strategy}))
    assert config.train_config().schedule_monitor == TrainConfig(
        user_level="gprec", strategy=strategy).schedule_monitor
