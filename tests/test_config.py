from dataclasses import dataclass, field
from typing import Literal

import pytest

from mtopt.config import ConfigError, from_dict, load_config, save_config, to_dict


@dataclass(frozen=True)
class Inner:
    size: int = 64
    """an int"""
    names: tuple[str, ...] = ()
    """a tuple"""

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")


@dataclass(frozen=True)
class Outer:
    rate: float = 0.5
    """a float"""
    mode: Literal["a", "b"] = "a"
    """a literal"""
    path: str | None = None
    """optional"""
    inner: Inner = field(default_factory=Inner)
    """nested"""


def test_from_dict_nested_and_coerced():
    cfg = from_dict(Outer, {"rate": 1, "mode": "b", "inner": {"size": 8, "names": ["x", "y"]}})
    assert cfg == Outer(rate=1.0, mode="b", inner=Inner(size=8, names=("x", "y")))
    assert isinstance(cfg.rate, float)


@dataclass(frozen=True)
class Preset:
    inner: Inner = field(default_factory=lambda: Inner(size=16, names=("kept",)))
    """a nested default that differs from Inner's class defaults"""


def test_a_nested_section_overrides_its_fields_default_value():
    # only `size` is given: `names` keeps the field's default value, not Inner's class default
    assert from_dict(Preset, {"inner": {"size": 4}}).inner == Inner(size=4, names=("kept",))
    assert from_dict(Preset, {}).inner == Inner(size=16, names=("kept",))


def test_the_demos_policy_section_keeps_the_collection_epsilon():
    from mtopt.experiments.demo import DemoConfig

    cfg = from_dict(DemoConfig, {"policy": {"cem": {"iterations": 3}}})
    assert cfg.policy.epsilon == 0.2 and cfg.policy.cem.iterations == 3


def test_dashes_are_accepted_and_unknown_keys_refused():
    assert from_dict(Inner, {"size": 3}).size == 3
    with pytest.raises(ConfigError, match=r"unknown config key 'inner.sise'.*\['names', 'size'\]"):
        from_dict(Outer, {"inner": {"sise": 3}})


def test_type_and_value_errors_name_the_key():
    with pytest.raises(ConfigError, match="rate: expected a number, got 'fast'"):
        from_dict(Outer, {"rate": "fast"})
    with pytest.raises(ConfigError, match="mode: 'c' is not one of the allowed values"):
        from_dict(Outer, {"mode": "c"})
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        from_dict(Outer, {"inner": {"size": 0}})


def test_yaml_round_trip(tmp_path):
    cfg = Outer(rate=0.25, path="x", inner=Inner(size=5, names=("a",)))
    p = tmp_path / "c.yaml"
    save_config(cfg, p)
    assert load_config(Outer, p) == cfg
    assert to_dict(cfg)["inner"]["names"] == ["a"]
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(Outer, tmp_path / "empty.yaml") == Outer()
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Outer, tmp_path / "list.yaml")


@dataclass(frozen=True)
class Pairs:
    pairs: tuple[tuple[str, float], ...] = ()
    """fixed-length tuples inside a variable-length one"""


def test_fixed_length_tuples_are_coerced_item_by_item():
    assert from_dict(Pairs, {"pairs": [["a", 1], ["b", 2.5]]}) == Pairs((("a", 1.0), ("b", 2.5)))
    with pytest.raises(ConfigError, match=r"pairs\[0\]: expected 2 items, got 3"):
        from_dict(Pairs, {"pairs": [["a", 1, 2]]})
    with pytest.raises(ConfigError, match=r"pairs\[0\]\[1\]: expected a number, got 'x'"):
        from_dict(Pairs, {"pairs": [["a", "x"]]})
