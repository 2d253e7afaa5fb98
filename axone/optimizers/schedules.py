"""Learning-rate schedules (course 001 §8; Keras ``optimizers.schedules``): ``schedule(step) → η``.

Course forms:  inverse time η₀/(1 + r·t) = InverseTimeDecay(η₀, 1, r);
exponential η₀·e^(−λt) = ExponentialDecay(η₀, 1, e^(−λ));
step η₀·r^⌊t/t_u⌋ = StepDecay(η₀, r, t_u) = ExponentialDecay(η₀, t_u, r, staircase=True).
"""
import math

__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
           "CosineDecay", "StepDecay", "serialize", "deserialize"]


class LearningRateSchedule:
    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _positive_steps(name, decay_steps):
    if decay_steps is None or decay_steps <= 0:
        raise ValueError(f"{name}: decay_steps must be positive, received {decay_steps}")
    return decay_steps


class ExponentialDecay(LearningRateSchedule):
    """η = η₀ · rate^(step / decay_steps) (floored exponent with ``staircase=True``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive_steps("ExponentialDecay", decay_steps)
        if decay_rate <= 0:
            raise ValueError(f"ExponentialDecay: decay_rate must be positive, received {decay_rate}")
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """η = η₀ / (1 + rate · step / decay_steps)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive_steps("InverseTimeDecay", decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1 + self.decay_rate * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step ≤ boundaries[0], values[1] while step ≤ boundaries[1], …"""

    def __init__(self, boundaries, values, name=None):
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstantDecay: expected len(values) == len(boundaries) + 1, "
                             f"received {len(values)} values and {len(boundaries)} boundaries")
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"PiecewiseConstantDecay: boundaries must increase, received {boundaries}")
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return float(v)
        return float(self.values[-1])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Optional linear warm-up, then η = η₀((1 − α)·½(1 + cos(π·t/decay_steps)) + α)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name=None, warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive_steps("CosineDecay", decay_steps)
        self.alpha = float(alpha)
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        if self.warmup_target is not None and step < self.warmup_steps:
            frac = step / self.warmup_steps
            return self.initial_learning_rate + frac * (self.warmup_target - self.initial_learning_rate)
        start = self.warmup_target if self.warmup_target is not None else self.initial_learning_rate
        t = min(step - (self.warmup_steps if self.warmup_target is not None else 0), self.decay_steps)
        cos = 0.5 * (1 + math.cos(math.pi * t / self.decay_steps))
        return start * ((1 - self.alpha) * cos + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class StepDecay(LearningRateSchedule):
    """The course's step decay: η = η₀ · drop^⌊step / steps_per_drop⌋."""

    def __init__(self, initial_learning_rate, drop, steps_per_drop, name=None):
        self.initial_learning_rate = float(initial_learning_rate)
        self.drop = float(drop)
        self.steps_per_drop = _positive_steps("StepDecay", steps_per_drop)
        self.name = name

    def __call__(self, step):
        return self.initial_learning_rate * self.drop ** math.floor(step / self.steps_per_drop)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "drop": self.drop,
                "steps_per_drop": self.steps_per_drop, "name": self.name}


_CLASSES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay,
                                     CosineDecay, StepDecay)}


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    cls = _CLASSES.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"Unknown learning-rate schedule {config.get('class_name')!r}; "
                         f"valid: {sorted(_CLASSES)}")
    return cls(**config.get("config", {}))
