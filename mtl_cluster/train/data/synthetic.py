"""The ``synthetic`` dataset: procedurally drawn face-like images carrying all four labels.

It is the default data for demos, debug runs and tests, so it must need no files, be fast to make
(well under a millisecond per 64x64 image) and be clearly learnable by AlexNet from scratch in a
few CPU minutes: every label drives a large, high-contrast visual cue, and nuisance variation
(position, scale, skin, hair, clothes and background colour, lighting, pixel noise) keeps it from
being trivial.

Cues (in face units, about pixels at 64 px; everything scales with ``image_size``):

* gender (0 female, 1 male, the IMDB-WIKI convention): long hair falling to the shoulders, a round
  chin and gold earrings, versus a short hair cap, a square jaw and a stubble beard;
* smile (0/1): a wide open mouth (dark half-disc with teeth) versus a short straight line;
* emotion (FER2013 order, see ``mtl_cluster.tasks.EMOTIONS``): thick brows whose angle and height
  differ per class, enlarged eyes whose shape differs per class, and a coloured mark for five
  classes (red crease Angry, green nose wrinkles Disgust, sweat drops Fear, pink cheeks Happy, tears
  Sad); Neutral is flat brows and plain eyes;
* age (1..100 years): hair and beard greyness linear in age, plus wrinkles (cheek folds, crow's
  feet, under-eye and jowl lines) whose number, darkness and thickness grow with age.

By default labels are sampled independently per image, so no cue predicts another task's label.
Horizontal flips keep every label (Disgust's one-sided brow and eye are asymmetric either way).

How tasks relate is a knob, so that a study can plant a known answer (studies/known_answer.yaml):

* ``data.synthetic_shared: [gender, smile]``: one latent u ~ U(0, 1) per image sets the labels of all
  the named tasks through each task's quantile (gender = smile = [u >= 0.5], emotion = floor(7u),
  age = 1 + floor(100u)). Only the first task's cue shows u; the others' own cues are drawn from
  independent labels and carry nothing, so the one visual cue of the first task drives every named
  label, and a model learns the others only by learning that cue;
* ``data.synthetic_task_sizes: {smile: 32}``: that task trains on the first 32 training images only
  (a data-poor task beside data-rich ones); val and test keep their size;
* ``data.synthetic_label_noise: {smile: 0.2}``: that share of the task's *training* labels is replaced
  by another class (age: a uniform age); val and test labels stay clean, so the table measures the task.

With the knobs empty the images are byte-identical to those of earlier versions.

``data.synthetic_cues: bold`` (the demo's data) draws the same faces with two cues that a random AlexNet
trunk already sees at initialisation: the flat background's hue is the emotion, and the age is the
picture's exposure, both the background's brightness and a gain on every pixel (dark young, light old).
A background-only age cue was too weak for a single-task 100-class age head from scratch: it sat on its
loss plateau for 100 to 300 steps depending on the seed (BENCHMARKS.md, "The demo").

Why the cues are this big: AlexNet trained from scratch on the summed losses tends to learn the
tasks one after another, and a task whose cue is small or only colour-relative (hair shape on a
random background, thin brows) can stall for thousands of steps while another task owns the trunk.
Fixed-colour, high-contrast marks and an age cue carried by the regions the gender task already
looks at (hair, beard) let all four tasks learn within the same ~1000 steps.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

from ...config import DataConfig
from ...datasets import SYNTHETIC
from ...tasks import EMOTIONS, TASKS
from .base import ArrayImages, TaskData

DATASET = SYNTHETIC
VAL_SPLIT = "val"
TEST_SPLIT = "test"
GENDERS: tuple[str, ...] = ("female", "male")
SMILES: tuple[str, ...] = ("no_smile", "smile")
AGE_RANGE = (1, 100)

# Separate seed streams per split: the same run seed never gives the same image in two splits.
# train and val keep the streams they always had, so earlier runs' images are unchanged.
_SPLIT_STREAM = {"train": 0, VAL_SPLIT: 1, TEST_SPLIT: 2}
_NOISE_STREAM = 3   # the label-noise draws: their own stream, so noise never moves an image
_LABEL_SPACE = {"gender": 2, "smile": 2, "emotion": len(EMOTIONS), "age": AGE_RANGE[1] - AGE_RANGE[0] + 1}

RGB = tuple[int, int, int]

# Colours that carry labels are fixed; the ones that are nuisance are sampled per image.
_FEATURE: RGB = (35, 25, 25)        # brow outlines, eye lines, pupils, creases
_EYE_WHITE: RGB = (250, 250, 250)
_MOUTH: RGB = (110, 20, 35)
_TEETH: RGB = (245, 245, 240)
_BEARD: RGB = (55, 42, 38)
_GOLD: RGB = (255, 200, 30)
_BLUE: RGB = (70, 140, 235)         # sweat and tears
_BLUSH: RGB = (235, 110, 120)
_ANGER: RGB = (215, 25, 25)         # the red crease of Angry
_SICK: RGB = (70, 160, 60)          # the green nose wrinkles of Disgust
_EYE_SCALE = 1.25                   # eyes drawn larger than life: emotion is the finest cue
_WRINKLE = np.array([70.0, 40.0, 30.0])
_GREY_HAIR = np.array([232.0, 232.0, 232.0])
_SKIN_LIGHT = np.array([250.0, 222.0, 196.0])
_SKIN_DARK = np.array([135.0, 92.0, 62.0])
# cues="bold" (the demo's data): the background's hue is the emotion, its brightness and the whole picture's
# exposure (a gain on every pixel, face included) the age.
_BOLD_SAT, _BOLD_DARK, _BOLD_LIGHT = 0.6, 110.0, 210.0
_BOLD_GAIN = (0.5, 1.2)


def _rgb(v: np.ndarray | tuple[float, ...]) -> RGB:
    r, g, b = (int(round(float(x))) for x in v)
    return (r, g, b)


class _Painter:
    """Draws in face units: (0, 0) is the face centre, the face is 42 wide and 50 tall.

    Face units are mapped through the image's jittered centre and scale, so every feature moves
    and scales with the face and nothing needs to know the output resolution.
    """

    def __init__(self, img: Image.Image, cx: float, cy: float, k: float, s: float):
        self.d = ImageDraw.Draw(img)
        self.cx, self.cy, self.k, self.s = cx, cy, k, s

    def pt(self, u: float, v: float) -> tuple[float, float]:
        return ((self.cx + u * self.k) * self.s, (self.cy + v * self.k) * self.s)

    def box(self, u0: float, v0: float, u1: float, v1: float) -> list[float]:
        return [*self.pt(u0, v0), *self.pt(u1, v1)]

    def w(self, width: float) -> int:
        return max(1, int(width * self.k * self.s + 0.5))

    def ellipse(self, u0: float, v0: float, u1: float, v1: float, fill: RGB,
                outline: RGB | None = None) -> None:
        self.d.ellipse(self.box(u0, v0, u1, v1), fill=fill, outline=outline)

    def dot(self, u: float, v: float, r: float, fill: RGB, ry: float | None = None) -> None:
        self.ellipse(u - r, v - (ry or r), u + r, v + (ry or r), fill)

    def rect(self, u0: float, v0: float, u1: float, v1: float, fill: RGB, radius: float = 0.0) -> None:
        if radius:
            self.d.rounded_rectangle(self.box(u0, v0, u1, v1), radius=radius * self.k * self.s, fill=fill)
        else:
            self.d.rectangle(self.box(u0, v0, u1, v1), fill=fill)

    def chord(self, u0: float, v0: float, u1: float, v1: float, start: float, end: float, fill: RGB) -> None:
        self.d.chord(self.box(u0, v0, u1, v1), start, end, fill=fill)

    def arc(self, u0: float, v0: float, u1: float, v1: float, start: float, end: float, fill: RGB,
            width: float) -> None:
        self.d.arc(self.box(u0, v0, u1, v1), start, end, fill=fill, width=self.w(width))

    def line(self, points: list[tuple[float, float]], fill: RGB, width: float) -> None:
        self.d.line([self.pt(u, v) for u, v in points], fill=fill, width=self.w(width))


def draw_face(gender: int, smile: int, emotion: int, age: float, rng: np.random.Generator,
              size: int = 64, cues: str = "faces") -> np.ndarray:
    """One face-like RGB image, uint8 (size, size, 3), whose visible features follow the labels.

    ``rng`` supplies the nuisance variation only; the same labels and rng state give the same bytes.
    ``cues="bold"`` adds the two big cues of the demo (module docstring) to the same face.
    """
    # Nuisance parameters.
    cx, cy = 32.0 + rng.uniform(-3.0, 3.0, size=2)
    k = rng.uniform(0.92, 1.08)
    bg_top = _saturated(rng)
    bg_bottom = np.clip(bg_top + rng.uniform(-30, 30, size=3), 0, 255)
    skin_t = rng.uniform(0.0, 1.0)
    skin = _SKIN_LIGHT * (1 - skin_t) + _SKIN_DARK * skin_t
    hair_base = rng.uniform(20, 50) * np.array([1.0, 0.8, 0.65])     # black to dark brown
    clothes = rng.uniform(30, 220, size=3)
    gain, offset = rng.uniform(0.85, 1.15), rng.uniform(-15, 15)

    # Age as 0..1; hair and beard grey linearly with it.
    a = (float(np.clip(age, *AGE_RANGE)) - AGE_RANGE[0]) / (AGE_RANGE[1] - AGE_RANGE[0])
    if cues == "bold":   # the same draws, so the nuisance of image i is the one it has under "faces"
        bg_top = bg_bottom = _bold_background(int(emotion), a)
        gain, offset = _BOLD_GAIN[0] + (_BOLD_GAIN[1] - _BOLD_GAIN[0]) * a + (gain - 1.0) / 5, offset / 5
    hair = _rgb(hair_base * (1 - a) + _GREY_HAIR * a)
    face = _rgb(skin)
    beard = _rgb(np.array(_BEARD) * (1 - 0.6 * a) + _GREY_HAIR * 0.6 * a)   # greys, but stays darker

    ramp = np.linspace(0.0, 1.0, size)[:, None, None]   # background: a vertical gradient
    canvas = (bg_top * (1 - ramp) + bg_bottom * ramp) * np.ones((1, size, 1))
    img = Image.fromarray(canvas.astype(np.uint8), "RGB")
    p = _Painter(img, float(cx), float(cy), float(k), size / 64.0)

    p.ellipse(-30, 29, 30, 66, _rgb(clothes))                        # shoulders
    if gender == 1:
        p.rect(-8, 15, 8, 33, _rgb(skin * 0.92))                    # neck
        p.ellipse(-21, -25, 21, 8, face)                             # square jaw
        p.rect(-21, -4, 21, 25, face, radius=5)
        p.chord(-23, -31, 23, -3, 180, 360, hair)                    # short cap and sideburns
        p.rect(-22, -19, -18, -6, hair)
        p.rect(18, -19, 22, -6, hair)
        p.chord(-21, -6, 21, 25, 0, 180, beard)                      # stubble beard and moustache
        p.ellipse(-12, 7, 12, 19, face)
        p.rect(-8, 8, 8, 10.5, beard)
    else:
        p.rect(-28, -30, 28, 37, hair, radius=14)                    # long hair to the shoulders
        p.rect(-8, 15, 8, 33, _rgb(skin * 0.92))
        p.ellipse(-21, -25, 21, 25, face)                            # round chin
        p.chord(-24, -30, 24, -3, 180, 360, hair)                    # fringe
        for u in (-21.5, 21.5):
            p.dot(u, 4.5, 2.5, _GOLD)                                # earrings

    _draw_age(p, a, skin)
    _draw_emotion(p, int(emotion))
    _draw_mouth(p, int(smile))

    out = np.asarray(img, dtype=np.float32) * gain + offset
    out += rng.normal(0.0, 6.0, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _bold_background(emotion: int, a: float) -> np.ndarray:
    """The demo's flat background: its hue is the emotion (seven hues around the wheel), its brightness
    the age (dark young, light old; never so dark that the hue is lost)."""
    return _hsv(6.0 * emotion / len(EMOTIONS), _BOLD_SAT, _BOLD_DARK + (_BOLD_LIGHT - _BOLD_DARK) * a)


def _hsv(hue: float, sat: float, val: float) -> np.ndarray:
    """RGB of a hue on the 0..6 wheel (red, yellow, green, cyan, blue, magenta), saturation and value."""
    x = 1 - abs(hue % 2 - 1)
    rgb = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(hue) % 6]
    return val * (1 - sat + sat * np.array(rgb, dtype=np.float64))


def _saturated(rng: np.random.Generator) -> np.ndarray:
    """A clearly coloured background (never grey), so grey hair stays the only large grey area."""
    hue = rng.uniform(0, 6)
    sat, val = rng.uniform(0.45, 0.85), rng.uniform(90, 230)
    return _hsv(hue, sat, val)


def _draw_age(p: _Painter, a: float, skin: np.ndarray) -> None:
    """Wrinkles: more, darker and thicker lines with age, so the cue is monotone (grey hair is the other)."""
    if a <= 0.1:
        return
    t = 0.25 + 0.65 * a
    ink = _rgb(skin * (1 - t) + _WRINKLE * t)
    w = 1 + 1.6 * a
    for sgn in (-1, 1):
        p.line([(sgn * 5, 5), (sgn * 10, 11), (sgn * 11, 17)], ink, w)          # cheek folds
        if a > 0.3:                                                               # crow's feet
            for dv in (-2.5, 0.0, 2.5):
                p.line([(sgn * 17, -3), (sgn * 20.5, -3 + dv)], ink, w)
        if a > 0.5:                                                               # under-eye lines
            p.arc(sgn * 10 - 5, 0, sgn * 10 + 5, 7, 20, 160, ink, w)
        if a > 0.7:                                                               # jowls
            p.line([(sgn * 13, 14), (sgn * 9, 21)], ink, w)


def _brows(p: _Painter, left: tuple[float, float], right: tuple[float, float], arch: bool = False) -> None:
    """Thick dark brows given as (inner, outer) heights per side (negative is up), or arched."""
    for sgn, (inner, outer) in ((-1, left), (1, right)):
        ui, uo = sgn * 3.5, sgn * 14.5
        if arch:
            v0 = -11 + min(inner, outer)
            p.arc(min(ui, uo), v0, max(ui, uo), v0 + 8, 195, 345, _FEATURE, 5)
        else:
            p.line([(ui, -11 + inner), (uo, -11 + outer)], _FEATURE, 5)


def _eye(p: _Painter, u: float, kind: str) -> None:
    """One eye centred at (u, -3), drawn in eye units scaled by _EYE_SCALE; ``side`` points to the ear.

    Each emotion but Neutral has its own eye shape (Disgust mixes a slit and a normal eye).
    """
    e, side = _EYE_SCALE, (1.0 if u > 0 else -1.0)

    def b(du0: float, dv0: float, du1: float, dv1: float) -> tuple[float, float, float, float]:
        return (u + du0 * e, -3 + dv0 * e, u + du1 * e, -3 + dv1 * e)

    def pt(du: float, dv: float) -> tuple[float, float]:
        return (u + du * side * e, -3 + dv * e)

    if kind in ("wide", "staring"):     # Surprise: big pupil; Fear: pin-point pupil
        p.ellipse(*b(-5, -5, 5, 5), _EYE_WHITE, outline=_FEATURE)
        p.dot(u, -3, (2.5 if kind == "wide" else 0.8) * e, _FEATURE)
    elif kind == "narrow":              # slit
        p.line([pt(-5, 0), pt(5, 0)], _FEATURE, 3 * e)
    elif kind == "closed":              # Happy: upward arcs
        p.arc(*b(-5, -3, 5, 5), 200, 340, _FEATURE, 3 * e)
    elif kind in ("droopy", "glare"):   # lower half of the eye under a slanted lid
        p.chord(*b(-4, -3, 4, 3), 0, 180, _EYE_WHITE)
        p.dot(u, -3 + 1.0 * e, 1.5 * e, _FEATURE)
        if kind == "droopy":            # Sad: lid drooping towards the ear
            p.line([pt(-5, -2), pt(5, 1)], _FEATURE, 2 * e)
        else:                           # Angry: lid slanting down towards the nose
            p.line([pt(-5, 1), pt(5, -3)], _FEATURE, 2.5 * e)
    else:                               # normal
        p.ellipse(*b(-4, -2.5, 4, 2.5), _EYE_WHITE)
        p.dot(u, -3, 2 * e, _FEATURE)


def _eyes(p: _Painter, left: str, right: str | None = None) -> None:
    _eye(p, -10.0, left)
    _eye(p, 10.0, right or left)


def _draw_emotion(p: _Painter, emotion: int) -> None:
    """Brows + eyes + one extra mark per FER2013 class, so each class differs from every other in two cues."""
    name = EMOTIONS[emotion]
    if name == "Angry":        # V brows pulled down to the centre, glaring eyes, red vertical crease
        _brows(p, (4, -3), (4, -3))
        _eyes(p, "glare")
        for u in (-2.0, 2.0):
            p.line([(u, -18), (u, -8)], _ANGER, 2.5)
    elif name == "Disgust":    # one brow low, one high; one eye squeezed shut; green nose wrinkles
        _brows(p, (3, 3), (-4, -4))
        _eyes(p, "narrow", "normal")
        for v in (0.0, 3.0, 6.0):
            p.line([(-4.5, v), (4.5, v - 2)], _SICK, 2.5)
    elif name == "Fear":       # raised brows slanted up to the centre, staring eyes, sweat drops
        _brows(p, (-6, -1), (-6, -1))
        _eyes(p, "staring")
        for u, v in ((-17.0, -11.0), (17.0, -11.0), (17.5, -3.0)):
            p.dot(u, v, 2.5, _BLUE, ry=3.5)
    elif name == "Happy":      # relaxed arched brows, closed smiling eyes, rosy cheeks
        _brows(p, (-2, -2), (-2, -2), arch=True)
        _eyes(p, "closed")
        for u in (-13.0, 13.0):
            p.dot(u, 5.5, 4.5, _BLUSH, ry=3.5)
    elif name == "Sad":        # brows low outside, raised inside; droopy eyes; tears down both cheeks
        _brows(p, (-2, 4), (-2, 4))
        _eyes(p, "droopy")
        for u in (-10.0, 10.0):
            p.line([(u, 1), (u - 0.5 if u < 0 else u + 0.5, 12)], _BLUE, 3.5)
    elif name == "Surprise":   # very high arched brows, wide eyes with big pupils
        _brows(p, (-8, -8), (-8, -8), arch=True)
        _eyes(p, "wide")
    else:                      # Neutral: flat brows, normal eyes
        _brows(p, (0, 0), (0, 0))
        _eyes(p, "normal")


def _draw_mouth(p: _Painter, smile: int) -> None:
    """Smile: wide open half-disc with teeth; no smile: short closed straight line."""
    if smile:
        p.chord(-10, 7, 10, 20, 0, 180, _MOUTH)
        p.rect(-7, 13.5, 7, 15.5, _TEETH)
    else:
        p.line([(-6, 14), (6, 14)], _MOUTH, 2)


def _sample_labels(rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Independent labels: gender and smile fair coins, emotion uniform over 7, age uniform 1..100."""
    return (int(rng.integers(0, 2)), int(rng.integers(0, 2)), int(rng.integers(0, len(EMOTIONS))),
            int(rng.integers(AGE_RANGE[0], AGE_RANGE[1] + 1)))


def _quantile(task: str, u: float) -> int:
    """The task's label at quantile u of its uniform label distribution (the shared-latent mapping)."""
    k = min(int(u * _LABEL_SPACE[task]), _LABEL_SPACE[task] - 1)
    return k + AGE_RANGE[0] if task == "age" else k


@functools.lru_cache(maxsize=8)
def synthetic_sample(seed: int, n: int, size: int, split: str, shared: tuple[str, ...] = (),
                     cues: str = "faces") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All four labels for ``n`` drawn images: (pixels uint8 (n,size,size,3), {task: float64 labels}).

    Cached so that the four tasks of one run share a single generation; the returned arrays are
    read-only because they are shared. Image i depends only on (seed, split, shared, i), so a larger
    ``n`` extends a smaller one instead of reshuffling it. ``shared``: tasks whose labels are set by
    one latent per image; ``cues``: ``faces`` or ``bold`` (module docstring).
    """
    if split not in _SPLIT_STREAM:
        raise ValueError(f"split must be one of {sorted(_SPLIT_STREAM)}, got {split!r}")
    if n < 0 or size < 1:
        raise ValueError(f"need n >= 0 and size >= 1, got n={n} size={size}")
    pixels = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty((n, len(TASKS)), dtype=np.float64)
    root = np.random.SeedSequence([int(seed), _SPLIT_STREAM[split]])
    for i, child in enumerate(root.spawn(n)):
        rng = np.random.default_rng(child)
        drawn = dict(zip(TASKS, _sample_labels(rng)))
        label = dict(drawn)
        if shared:   # the first task's cue shows the latent; the others' cues stay independent (uninformative)
            u = float(rng.uniform())
            label.update({t: _quantile(t, u) for t in shared})
            drawn[shared[0]] = label[shared[0]]
        g, sm, em, age = (int(drawn[t]) for t in TASKS)
        pixels[i] = draw_face(g, sm, em, age, rng, size, cues)
        labels[i] = tuple(label[t] for t in TASKS)
    pixels.setflags(write=False)
    out = {t: labels[:, j].copy() for j, t in enumerate(TASKS)}
    for v in out.values():
        v.setflags(write=False)
    return pixels, out


def noisy_labels(labels: np.ndarray, task: str, p: float, seed: int) -> np.ndarray:
    """A copy of ``labels`` whose share ``p`` (each label independently) is replaced by a wrong class, or for
    age by a uniform age; label i's fate depends only on (seed, task, i), like the images."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _NOISE_STREAM, TASKS.index(task)]))
    hit, draw = rng.random(len(labels)) < p, rng.random(len(labels))
    out = labels.copy()
    k = _LABEL_SPACE[task]
    if task == "age":
        out[hit] = AGE_RANGE[0] + np.minimum((draw[hit] * k).astype(int), k - 1)
    else:   # another class: shift by 1..k-1
        out[hit] = (labels[hit] + 1 + np.minimum((draw[hit] * (k - 1)).astype(int), k - 2)) % k
    out.setflags(write=False)
    return out


def load_synthetic(task: str, data: DataConfig, seed: int, image_size: int) -> TaskData:
    """One task's view of the shared synthetic generation: train, val and test from separate streams
    (val and test both ``data.synthetic_eval_size`` images)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    shared = tuple(data.synthetic_shared)
    sets = {split: synthetic_sample(seed, n, image_size, split, shared, data.synthetic_cues)
            for split, n in (("train", data.synthetic_train_size), (VAL_SPLIT, data.synthetic_eval_size),
                             (TEST_SPLIT, data.synthetic_eval_size))}
    images = {split: ArrayImages(px, lab[task]) for split, (px, lab) in sets.items()}
    n_train = data.synthetic_task_sizes.get(task, data.synthetic_train_size)
    noise = data.synthetic_label_noise.get(task, 0.0)
    if n_train < data.synthetic_train_size or noise > 0:   # else the four tasks keep sharing one array
        train_px, train_labels = sets["train"][0][:n_train], sets["train"][1][task][:n_train]
        if noise > 0:
            train_labels = noisy_labels(train_labels, task, noise, seed)
        images["train"] = ArrayImages(train_px, train_labels)
    classes = {"gender": dict(zip(GENDERS, range(2))), "smile": dict(zip(SMILES, range(2))),
               "emotion": {name: i for i, name in enumerate(EMOTIONS)}}.get(task, {})
    return TaskData(task=task, dataset=DATASET, train=images["train"], val=images[VAL_SPLIT],
                    test=images[TEST_SPLIT], val_split=VAL_SPLIT, test_split=TEST_SPLIT, classes=classes,
                    source=f"{DATASET}(seed={seed}, size={image_size})")
