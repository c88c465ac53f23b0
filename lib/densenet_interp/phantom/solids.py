"""Convex solids and their exact X-ray path lengths: the geometry under every phantom radiograph.

A radiograph is a projection: the brightness of a pixel depends on how much matter the ray through it crosses.
Every object of the phantom (a bone end, a bone shaft, soft tissue, a screw, a plate) is an affine image of a
unit solid (ball, cylinder or cube), optionally cut by planes. The length of a ray inside such a solid is the
distance between the two roots of a quadratic, intersected with the planes' bounds: exact, vectorised over
pixels, no ray marching. A hollow core (bone marrow inside the cortical shell) is the same quadric with a
smaller radius, so ``path_lengths`` returns the chord through the outer solid and through its core in one go.

Rays run along +z of the *image frame*: x to the right and y down in pixels, z into the detector. The world
(millimetres, anatomy frame) is mapped into the image frame by ``Solid.mapped`` with the camera's linear map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

SHAPES = ("ball", "cylinder", "cube")
_EPS = 1e-9
_CUBE_CORNERS = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)


@dataclass(frozen=True)
class Solid:
    """A unit solid mapped by ``p = center + axes @ u`` and cut by half-spaces ``normal . p <= offset``.

    Unit solids: ``ball`` |u| <= 1; ``cylinder`` u_x^2 + u_z^2 <= 1 and |u_y| <= 1 (axis along the second
    column of ``axes``); ``cube`` max |u_i| <= 1. ``core`` in [0, 1) is the relative radius of a hollow core
    (the same quadric scaled by ``core``; for cylinders only the radial size shrinks); 0 means solid.
    """

    shape: str
    center: np.ndarray
    axes: np.ndarray
    clips: tuple[tuple[np.ndarray, float], ...] = ()
    core: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"solid shape {self.shape!r} is not one of {SHAPES}")
        if not 0.0 <= self.core < 1.0:
            raise ValueError(f"core ratio must be in [0, 1), got {self.core}")

    def mapped(self, linear: np.ndarray, shift: np.ndarray) -> Solid:
        """The solid after ``p -> linear @ p + shift`` (any invertible linear map: rotation, scale, mirror)."""
        clips = ()
        if self.clips:
            inv_t = np.linalg.inv(linear).T
            clips = tuple((inv_t @ n, float(d + (inv_t @ n) @ shift)) for n, d in self.clips)
        return Solid(self.shape, linear @ self.center + shift, linear @ self.axes, clips, self.core)

    def moved(self, rotation: np.ndarray, pivot: np.ndarray, shift: np.ndarray | None = None) -> Solid:
        """Rotate about ``pivot`` and then translate by ``shift`` (a rigid motion in the world frame)."""
        shift = np.zeros(3) if shift is None else np.asarray(shift, float)
        return self.mapped(rotation, pivot - rotation @ pivot + shift)

    def clipped(self, normal: np.ndarray, offset: float) -> Solid:
        """The part of the solid on the side ``normal . p <= offset``."""
        return Solid(
            self.shape, self.center, self.axes, (*self.clips, (np.asarray(normal, float), offset)), self.core
        )

    def scaled(self, factor: float) -> Solid:
        """The same solid grown about its centre by ``factor`` (used for lesion regions around objects)."""
        return Solid(self.shape, self.center, self.axes * factor, self.clips, self.core)

    def corners(self) -> np.ndarray:
        """The 8 corners of the mapped unit cube that contains the unit solid, shape (8, 3)."""
        return self.center + _CUBE_CORNERS @ self.axes.T


# ----------------------------------------------------------------------------------------------- constructors
def rotation(axis: str | np.ndarray, degrees: float) -> np.ndarray:
    """Rotation matrix about ``"x"``, ``"y"``, ``"z"`` or an arbitrary 3-vector, right-handed, in degrees."""
    if isinstance(axis, str):
        axis = {"x": np.array([1.0, 0, 0]), "y": np.array([0, 1.0, 0]), "z": np.array([0, 0, 1.0])}[axis]
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def perpendicular_frame(direction: np.ndarray, roll_hint: np.ndarray | None = None) -> np.ndarray:
    """An orthonormal 3x3 frame whose second column is ``direction``; the first column lies near ``roll_hint``."""
    dx, dy, dz = (float(v) for v in direction)
    n = math.sqrt(dx * dx + dy * dy + dz * dz)
    dx, dy, dz = dx / n, dy / n, dz / n
    hx, hy, hz = (1.0, 0.0, 0.0) if roll_hint is None else (float(v) for v in roll_hint)
    hn = math.sqrt(hx * hx + hy * hy + hz * hz)
    if abs(hx * dx + hy * dy + hz * dz) > 0.95 * hn:
        hx, hy, hz = (0.0, 0.0, 1.0) if abs(dz) < 0.9 else (1.0, 0.0, 0.0)
    dot = hx * dx + hy * dy + hz * dz
    ax, ay, az = hx - dot * dx, hy - dot * dy, hz - dot * dz
    an = math.sqrt(ax * ax + ay * ay + az * az)
    ax, ay, az = ax / an, ay / an, az / an
    cx, cy, cz = ay * dz - az * dy, az * dx - ax * dz, ax * dy - ay * dx  # e1 x d
    return np.array([[ax, dx, cx], [ay, dy, cy], [az, dz, cz]])


def ball(center, radii, orientation: np.ndarray | None = None, core: float = 0.0) -> Solid:
    """An ellipsoid with semi-axes ``radii`` (a number or 3 numbers) along the columns of ``orientation``."""
    r = np.broadcast_to(np.asarray(radii, float), (3,))
    rot = np.eye(3) if orientation is None else np.asarray(orientation, float)
    return Solid("ball", np.asarray(center, float), rot * r, (), core)


def rod(p0, p1, radius: float, depth_ratio: float = 1.0, core: float = 0.0, roll_hint=None) -> Solid:
    """A cylinder from ``p0`` to ``p1``: elliptic cross-section ``radius`` x ``radius * depth_ratio``."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    frame = perpendicular_frame(p1 - p0, roll_hint)
    half = np.linalg.norm(p1 - p0) / 2
    axes = frame * np.array([radius, half, radius * depth_ratio])
    return Solid("cylinder", (p0 + p1) / 2, axes, (), core)


def box(center, half_sizes, orientation: np.ndarray | None = None) -> Solid:
    """A cuboid with half side lengths ``half_sizes`` along the columns of ``orientation``."""
    rot = np.eye(3) if orientation is None else np.asarray(orientation, float)
    return Solid("cube", np.asarray(center, float), rot * np.asarray(half_sizes, float), (), 0.0)


# ----------------------------------------------------------------------------------------------- projection
def half_extent(solid: Solid) -> tuple[float, float]:
    """Exact half widths in x and y of the solid's projection (ignoring clips) around its centre."""
    (a0, a1, a2), (b0, b1, b2) = solid.axes[0], solid.axes[1]
    if solid.shape == "ball":
        return math.sqrt(a0 * a0 + a1 * a1 + a2 * a2), math.sqrt(b0 * b0 + b1 * b1 + b2 * b2)
    if solid.shape == "cylinder":
        return abs(a1) + math.sqrt(a0 * a0 + a2 * a2), abs(b1) + math.sqrt(b0 * b0 + b2 * b2)
    return abs(a0) + abs(a1) + abs(a2), abs(b0) + abs(b1) + abs(b2)


def pixel_bbox(solid: Solid, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Rows and columns ``(r0, r1, c0, c1)`` (half-open) that can see ``solid`` (image frame), or None."""
    hx, hy = half_extent(solid)
    cx, cy = float(solid.center[0]), float(solid.center[1])
    c0, c1 = max(int(math.floor(cx - hx)), 0), min(int(math.ceil(cx + hx)) + 1, width)
    r0, r1 = max(int(math.floor(cy - hy)), 0), min(int(math.ceil(cy + hy)) + 1, height)
    if r0 >= r1 or c0 >= c1:
        return None
    return r0, r1, c0, c1


def _interval(slope: float, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
    """Solve ``-1 <= lin + slope * t <= 1`` for t: (lo, hi) arrays, or a boolean mask when slope is ~0."""
    if abs(slope) < _EPS:
        return np.abs(lin) <= 1.0
    a = (-1.0 - lin) * (1.0 / slope)
    b = (1.0 - lin) * (1.0 / slope)
    return (a, b) if slope > 0 else (b, a)


def path_lengths(solid: Solid, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Chord lengths (image-frame units) of the rays through pixel centres ``rows`` x ``cols``.

    Returns ``(outer, core)``: the length inside the solid and inside its hollow core (None when
    ``core == 0``), each of shape ``(len(rows), len(cols))`` and the dtype of ``rows`` (float32 is plenty:
    coordinates are centred on the solid). Rays are parallel to +z.
    """
    m = np.linalg.inv(solid.axes).tolist()
    e, f, w = (m[0][0], m[1][0], m[2][0]), (m[0][1], m[1][1], m[2][1]), (m[0][2], m[1][2], m[2][2])
    # centred pixel coordinates keep the quadratic well conditioned; tau = t - centre_z along the ray
    x = cols + (0.5 - float(solid.center[0]))
    y = rows + (0.5 - float(solid.center[1]))
    yy, xx = y[:, None], x[None, :]
    xy = np.multiply.outer(y, x)
    shape = (len(rows), len(cols))

    if solid.shape == "cube":
        lo = np.full(shape, -np.inf, dtype=x.dtype)
        hi = np.full(shape, np.inf, dtype=x.dtype)
        mask = np.ones(shape, bool)
        for i in range(3):
            got = _interval(w[i], e[i] * xx + f[i] * yy)
            if isinstance(got, tuple):
                lo = np.maximum(lo, got[0])
                hi = np.minimum(hi, got[1])
            else:
                mask &= got
        lo, hi = _apply_clips(solid, xx, yy, lo, hi, mask)
        return np.where(mask, np.maximum(hi - lo, 0.0), 0.0), None

    sel = (1.0, 1.0, 1.0) if solid.shape == "ball" else (1.0, 0.0, 1.0)

    def dot(u, v):
        return sel[0] * u[0] * v[0] + sel[1] * u[1] * v[1] + sel[2] * u[2] * v[2]

    a = dot(w, w)
    esw, fsw, ese, esf, fsf = dot(e, w), dot(f, w), dot(e, e), dot(e, f), dot(f, f)
    axial = _interval(w[1], e[1] * xx + f[1] * yy) if solid.shape == "cylinder" else None

    if a < _EPS:  # ray parallel to a cylinder's axis: inside for the whole axial extent or not at all
        radial = (ese * x * x)[None, :] + (2 * esf) * xy + (fsf * y * y)[:, None]
        lo, hi = axial if isinstance(axial, tuple) else (np.zeros(shape, x.dtype), np.zeros(shape, x.dtype))
        outer = np.where(radial <= 1.0, np.maximum(hi - lo, 0.0), 0.0)
        core = np.where(radial <= solid.core**2, outer, 0.0) if solid.core > 0 else None
        return outer, core

    # quarter discriminant: (b/2)^2 - a*c with b/2 = beta, c = q - 1  ->  q_form + a
    q_form = ((esw * esw - a * ese) * x * x)[None, :] + (2 * (esw * fsw - a * esf)) * xy
    q_form += ((fsw * fsw - a * fsf) * y * y)[:, None]
    half = np.sqrt(np.maximum(q_form + a, 0.0)) * (1.0 / a)
    half_core = np.sqrt(np.maximum(q_form + a * solid.core**2, 0.0)) * (1.0 / a) if solid.core > 0 else None

    if axial is None and not solid.clips:  # plain ball: the chord is twice the half chord
        return 2 * half, (2 * half_core if half_core is not None else None)

    mid = (esw * (-1.0 / a)) * xx + (fsw * (-1.0 / a)) * yy
    lo = np.full(shape, -np.inf, dtype=x.dtype)
    hi = np.full(shape, np.inf, dtype=x.dtype)
    mask = np.ones(shape, bool)
    if isinstance(axial, tuple):
        lo, hi = axial
    elif axial is not None:
        mask = axial
    lo, hi = _apply_clips(solid, xx, yy, lo, hi, mask)

    outer = np.maximum(np.minimum(hi, mid + half) - np.maximum(lo, mid - half), 0.0)
    outer = np.where(mask & (half > 0), outer, 0.0)
    core = None
    if half_core is not None:
        core = np.maximum(np.minimum(hi, mid + half_core) - np.maximum(lo, mid - half_core), 0.0)
        core = np.where(mask & (half_core > 0), core, 0.0)
    return outer, core


def _apply_clips(solid: Solid, xx, yy, lo, hi, mask):
    """Intersect the ray intervals ``[lo, hi]`` with the solid's half-spaces (in place on ``mask``)."""
    for normal, offset in solid.clips:
        nx, ny, nz = (float(v) for v in normal)
        rhs = (float(offset - normal @ solid.center) - nx * xx) - ny * yy
        if abs(nz) < _EPS:
            mask &= np.broadcast_to(rhs >= 0, mask.shape)
        elif nz > 0:
            hi = np.minimum(hi, rhs * (1.0 / nz))
        else:
            lo = np.maximum(lo, rhs * (1.0 / nz))
    return lo, hi


def silhouette(solid: Solid, points: int = 24) -> np.ndarray:
    """Outline of the solid's projection onto the image plane (ignoring clips), counter-clockwise (n, 2)."""
    theta = np.linspace(0, 2 * np.pi, points, endpoint=False)
    circle = np.stack([np.cos(theta), np.sin(theta)])
    proj = solid.axes[:2, :]
    if solid.shape == "ball":
        cov = proj @ proj.T + 1e-9 * np.eye(2)
        return solid.center[:2] + (np.linalg.cholesky(cov) @ circle).T
    if solid.shape == "cylinder":
        rim = proj[:, [0, 2]]  # the end disc projects to the ellipse rim @ (cos, sin)
        half = proj[:, 1]
        if abs(np.linalg.det(rim)) > 1e-9:  # Minkowski sum of that ellipse and the axis, no hull needed
            normals = np.linalg.inv(rim).T @ circle
            sign = np.where(half @ normals >= 0, 1.0, -1.0)
            return solid.center[:2] + (rim @ circle).T + sign[:, None] * half
        ends = [solid.center[:2] + s * half for s in (-1, 1)]
        pts = np.concatenate([(end[:, None] + rim @ circle).T for end in ends])
    else:
        pts = solid.corners()[:, :2]
    return convex_hull(pts)


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull of 2-D points; a degenerate (flat) set gives its bounding box."""
    try:
        return points[ConvexHull(points).vertices]
    except (QhullError, ValueError):
        lo, hi = points.min(0) - 0.5, points.max(0) + 0.5
        return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
