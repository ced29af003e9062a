"""The configuration a text model trains with: the architecture's config.json, the training defaults,
the user's flags and --set entries, and the size rule; every value checked before training starts."""
from __future__ import annotations

import copy
import json
import math

from utils.errors import UserError

SECTIONS = ("general", "model", "training", "testing", "dataset")

TRAINING_DEFAULTS = {
    "save_model": True, "epochs": 2000, "max_minutes": None, "learning_rate": 2e-3, "batch_size": 64,
    "seq_len": 128, "grad_clip": 1.0, "weight_decay": 0.01, "warmup_steps": 50, "min_lr_ratio": 0.1,
    "sample_length": 200, "bf16": "auto",
    # right-sized on any text: evaluate (held-out loss, sample) once an epoch but at most every
    # min_eval_steps steps (a chapter has a few steps per epoch), and after `patience` evaluations
    # without a better held-out loss anneal and stop (0: never stop early)
    "min_eval_steps": 50, "patience": 3,
    # after `patience` evaluations without a better held-out loss: back to the best weights, anneal the
    # learning rate to its floor over this share of the steps done so far, then stop
    "anneal_share": 0.25,
    # the weights evaluated, kept and annealed are an exponential moving average of the trained ones
    # over about this many steps (decay 1 - 1/ema_steps; 0 = off, the raw weights)
    "ema_steps": 0,
    # truncated backpropagation through time on contiguous lanes: the text cut into batch_size lanes,
    # step j of a pass over the lanes takes window j of each lane and starts from the state the previous window left
    # (LSTM state, TCN queues), so training sees the long context evaluation gives; false = random windows
    # each starting from an empty state
    "carry_state": False,
    # data noising (Xie et al., 2017, "Data noising as smoothing in neural network language models"): each
    # input character of a training window is replaced, with this probability, by one drawn from the
    # training text's character frequencies (the targets stay); 0 = off. Evaluation never noises.
    "input_noise": 0.0,
    # n-gram distillation: the training targets are (1 - w) * the true next character + w * the predictive
    # distribution of a Kneser-Ney model that never counted that character (cross-fitted on the training
    # text's other parts, `exercise1.ngram.cross_fitted`); the loss shown stays the plain cross-entropy, and
    # evaluation and generation use the model alone. 0 = off
    "ngram_distill": 0.0,
}

# what a resumed run may change: how long it goes on, when it stops by itself, how often it looks, the
# number format; every other training setting shapes the path from the first step on (--resume refuses a change)
RESUME_MAY_CHANGE = ("epochs", "max_minutes", "patience", "save_model", "sample_length", "min_eval_steps", "bf16")


def changed_on_resume(saved: dict, now: dict) -> list[str]:
    """The training settings, other than RESUME_MAY_CHANGE, in which `now` differs from the `saved` config
    of the run being resumed, as "key: old -> new" (a setting added after the run started counts at its
    default, the value that run trained with, as long as that default never changes)."""
    saved = {**TRAINING_DEFAULTS, **saved}
    return [f"{key}: {saved.get(key)!r} -> {value!r}" for key, value in now.items()
            if key not in RESUME_MAY_CHANGE and saved.get(key) != value]


# training.KEY -> (kind, lower bound, whether the bound itself is allowed, what the value means)
_CHECKS = {
    "epochs": ("int", 1, True, "passes over the training text"),
    "batch_size": ("int", 1, True, "windows per step"),
    "seq_len": ("int", 1, True, "characters per training window"),
    "warmup_steps": ("int", 0, True, "steps of linear warm-up"),
    "sample_length": ("int", 0, True, "characters sampled at each evaluation"),
    "min_eval_steps": ("int", 1, True, "steps between evaluations at least"),
    "patience": ("int", 0, True, "evaluations without a better held-out loss before stopping; 0 = never"),
    "learning_rate": ("float", 0, False, "peak learning rate"),
    "grad_clip": ("float", 0, False, "gradient norm clip"),
    "weight_decay": ("float", 0, True, "AdamW weight decay"),
    "min_lr_ratio": ("float", 0, True, "final learning rate as a share of the peak"),
    "anneal_share": ("float", 0, True, "length of the final anneal, as a share of the steps done before it"),
    "ema_steps": ("float", 0, True, "steps a moving average of the weights spans; 0 = off"),
}


def minutes_arg(value: str):
    """--max_minutes: a positive number of minutes, or `none` for no time limit."""
    if value.strip().lower() in ("none", "inf", "unlimited"):
        return "none"
    try:
        minutes = float(value)
    except ValueError:
        raise UserError(f"--max_minutes expects a number of minutes > 0 or 'none' (no time limit), got {value!r}") from None
    if not minutes > 0 or math.isinf(minutes):
        raise UserError(f"--max_minutes must be > 0 (use --max_minutes none for no time limit), got {value}")
    return minutes


def check_training(cfg: dict, where: str = "training") -> None:
    """Every training value of the right kind and range, or a UserError that names it (as `where`.key:
    "small_text.training" when the value came from the size rule's small-text end)."""
    for key, (kind, low, inclusive, meaning) in _CHECKS.items():
        value = cfg.get(key)
        ok_kind = (isinstance(value, int) if kind == "int" else isinstance(value, (int, float))) \
            and not isinstance(value, bool)
        if not ok_kind or (kind == "float" and not math.isfinite(value)) or value < low or (value == low and not inclusive):
            bound = f">= {low}" if inclusive else f"> {low}"
            raise UserError(f"{where}.{key} ({meaning}) must be {'a whole number' if kind == 'int' else 'a number'} "
                            f"{bound}, got {value!r}")
    if 0 < cfg["ema_steps"] < 1:
        raise UserError(f"{where}.ema_steps must be 0 (off) or at least 1 step, got {cfg['ema_steps']!r}")
    if cfg["min_lr_ratio"] > 1:
        raise UserError(f"{where}.min_lr_ratio must lie in 0..1, got {cfg['min_lr_ratio']!r}")
    limit = cfg.get("max_minutes")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0
                              or math.isinf(limit)):
        raise UserError(f"{where}.max_minutes must be a number > 0, or null for no time limit (--max_minutes none), "
                        f"got {limit!r}")
    noise = cfg.get("input_noise")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 1:
        raise UserError(f"{where}.input_noise (the share of input characters replaced by random ones) must lie in "
                        f"[0, 1), got {noise!r}")
    weight = cfg.get("ngram_distill")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < 1:
        raise UserError(f"{where}.ngram_distill (the weight of the n-gram teacher in the training targets) must lie "
                        f"in [0, 1), got {weight!r}")
    if not isinstance(cfg.get("carry_state"), bool):
        raise UserError(f"{where}.carry_state must be true or false, got {cfg.get('carry_state')!r}")
    if cfg.get("bf16") not in ("auto", True, False):
        raise UserError(f"{where}.bf16 must be \"auto\", true or false, got {cfg.get('bf16')!r}")


def apply_overrides(config: dict, args) -> tuple[dict, frozenset]:
    """The config with the flags and --set entries applied, and the "section.key" names they set
    (the size rule leaves those alone)."""
    config = copy.deepcopy(config)
    fixed = set()
    for section in SECTIONS:
        config.setdefault(section, {})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise UserError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
        section, name = key.split(".", 1)
        if section not in SECTIONS + ("small_text",):
            raise UserError(f"--set {item!r}: unknown section {section!r}; the config's sections are "
                            f"{', '.join(SECTIONS + ('small_text',))}")
        if section == "training" and name not in TRAINING_DEFAULTS:
            raise UserError(f"--set {item!r}: unknown training setting {name!r}; known: {', '.join(TRAINING_DEFAULTS)}")
        fixed.add(key)
        try:
            config.setdefault(section, {})[name] = json.loads(value)
        except json.JSONDecodeError:
            config.setdefault(section, {})[name] = value
    t = config["training"]
    for flag, key in (("epochs", "epochs"), ("max_minutes", "max_minutes"), ("lr", "learning_rate"),
                      ("batch_size", "batch_size"), ("seq_len", "seq_len"), ("patience", "patience")):
        value = getattr(args, flag)
        if value is not None:
            t[key] = None if value == "none" else value
            fixed.add(f"training.{key}")
    if args.bf16 or args.fp32:
        t["bf16"] = bool(args.bf16)
    if args.name:
        config["model"]["name"] = args.name
    if args.dataset:
        config["dataset"]["name"] = args.dataset
    if args.data_dir:
        config["dataset"]["data_dir"] = args.data_dir
    if args.device:
        config["general"]["device"] = args.device
    return config, frozenset(fixed)


ROUND_TO = {"d_model": 16, "linear_layer_size": 16, "channels": 16}  # widths interpolated to multiples of these


def _blend(key: str, small, large, t: float):
    """`small` at t = 0, `large` at t = 1: numbers geometrically (widths, batch sizes, passes), or linearly
    where both are floats below 1 (dropout, rates) or one is 0; lists element by element; integers stay
    integers (widths a multiple of ROUND_TO[key]); anything else switches at t = 1/2."""
    if isinstance(small, list) and isinstance(large, list) and len(small) == len(large):
        return [_blend(key, a, b, t) for a, b in zip(small, large)]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (small, large))
    if not numbers:
        return small if t < 0.5 else large
    if small > 0 and large > 0 and not (small < 1 and large < 1 and isinstance(small, float)):
        value = math.exp(math.log(small) + t * (math.log(large) - math.log(small)))
    else:
        value = small + t * (large - small)
    if isinstance(small, int) and isinstance(large, int):
        step = ROUND_TO.get(key, 1)
        if min(small, large) == 0:  # a setting off at one end (e.g. ema_steps 300 -> 0) may round to off
            return int(round(value / step)) * step
        return max(step, int(round(value / step)) * step)
    return round(value, 4)


def fit_to_text(config: dict, n_train_chars: int, fixed=frozenset()) -> tuple[dict, str]:
    """The size rule: a text of at most `small_text.chars` training characters trains with the config's
    `small_text` settings (a smaller batch and width, more dropout), a text of at least
    `small_text.full_chars` with the config's own (tuned on a novel), and a text in between with each
    setting interpolated on the logarithm of its size (`_blend`), so the recipe follows the size
    smoothly. `small_text.fade_chars` may give a setting its own end point ("training.input_noise":
    290000: the config's own value from 290,000 characters on) where a small-text setting stops
    helping well before full_chars. Keys in `fixed` ("section.key", set by a flag or --set) are left
    as the user gave them; `small_text.chars = 0` turns the rule off. Returns the config to train with
    and the line that says what the rule did."""
    rule = config.get("small_text") or {}
    if "below_chars" in rule:
        raise UserError("small_text.below_chars (a single threshold) was replaced by small_text.chars and "
                        "small_text.full_chars (settings interpolated between them): update the config's small_text")
    low, high = rule.get("chars"), rule.get("full_chars")
    for key, value in (("chars", low), ("full_chars", high)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise UserError(f"small_text.{key} must be a whole number of characters >= 0 (small_text.chars=0: size "
                            f"rule off), got {value!r}")
    if not low:
        return config, "size rule: off (the config sets no small_text.chars)"
    for section in ("model", "training"):
        for key in rule.get(section) or {}:
            if key not in config.get(section, {}):  # nothing to interpolate towards: the rule would jump at full_chars
                raise UserError(f"small_text.{section}.{key} is set but {section}.{key} is not: set both (the size rule "
                                f"interpolates from the small-text value to the config's own one)")
    high = high or low
    if high < low:
        raise UserError(f"small_text.full_chars ({high:,}) must be at least small_text.chars ({low:,})")
    fade = rule.get("fade_chars") or {}
    if not isinstance(fade, dict):
        raise UserError(f"small_text.fade_chars must map \"section.key\" to a number of characters, got {fade!r}")
    if fade and high <= low:
        raise UserError("small_text.fade_chars needs small_text.full_chars above small_text.chars (an end point "
                        "lies between the two): set full_chars, or remove fade_chars")
    for name, end in fade.items():
        section, _, key = name.partition(".")
        if section not in ("model", "training") or key not in (rule.get(section) or {}):
            raise UserError(f"small_text.fade_chars names {name!r}, which small_text does not set: use the "
                            f"\"section.key\" of a small_text setting")
        if not isinstance(end, int) or isinstance(end, bool) or not low < end <= high:
            raise UserError(f"small_text.fade_chars[{name!r}] must be a whole number of characters above "
                            f"small_text.chars ({low:,}) and at most full_chars ({high:,}), got {end!r}")
    if n_train_chars >= high:
        return config, (f"size rule: {n_train_chars:,} training characters >= small_text.full_chars={high:,}: "
                        "the config's settings")

    def share(end):  # how far the text lies from chars (0) to `end` (1), on a log scale
        return 0.0 if n_train_chars <= low else min(1.0, math.log(n_train_chars / low) / math.log(end / low))
    t = share(high)
    config = copy.deepcopy(config)
    changed, kept = [], []
    for section in ("model", "training"):
        target = config.setdefault(section, {})
        for key, small in rule.get(section, {}).items():
            end = fade.get(f"{section}.{key}", high)
            value = _blend(key, small, target[key], share(end))
            if target.get(key) == value:
                continue
            if f"{section}.{key}" in fixed:
                kept.append(f"{key}={target.get(key)}")
            else:
                own = f" (its own end point: {end:,})" if end != high else ""
                changed.append(f"{key} {target.get(key)} -> {value}{own}")
                target[key] = value
    where = (f"<= small_text.chars={low:,}: the small-text settings" if t == 0 else
             f"between small_text.chars={low:,} and full_chars={high:,} ({t:.0%} of the way on a log scale): "
             "settings interpolated")
    line = f"size rule: {n_train_chars:,} training characters {where}: " + (", ".join(changed) or "(no change)")
    return config, line + (f"; kept as given: {', '.join(kept)}" if kept else "")


def training_config(config: dict, n_train_chars: int, fixed=frozenset()) -> tuple[dict, str]:
    """The complete config a run trains with: sections filled in, training defaults merged under the
    config's values, the size rule applied, every training value checked. Returns it and the size
    rule's line."""
    config = copy.deepcopy(config)
    for section in SECTIONS:
        config.setdefault(section, {})
    config["training"] = {**TRAINING_DEFAULTS, **config["training"]}
    rule = config.get("small_text") or {}
    if rule.get("chars") and rule.get("training"):  # the config's own values, then the small-text end, so a
        check_training(config["training"])          # bad value is named where it is set
        check_training({**config["training"], **rule["training"]}, where="small_text.training")
    config, line = fit_to_text(config, n_train_chars, fixed)
    check_training(config["training"])
    return config, line
