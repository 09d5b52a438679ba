"""Stratified importance sampling of labelled points in a cuboid around a mesh, unbiased weights.

The cuboid is tiled into equal cells. A cell is `boundary` if the bounding box of some triangle
touches it, so every other cell holds no surface at all and the winding number is constant on it;
face-connected surface-free cells form components of one winding number, which we evaluate at one
cell centre per component. Those cells are `interior` (winding >= 1) or `exterior`.

Each stratum s gets a fixed number of points N_s (fractions from config; by default about half of
all points end up inside), each drawn by picking one of its C_s cells uniformly and then a uniform
point in that cell. The density relative to uniform over the cuboid is p = (N_s / N) / (C_s / C),
and the weight (1 / N) / p = (C_s / C) / N_s. The weights sum to 1 (up to rounding), and
sum(weights * inside) is an unbiased estimate of the inside fraction of the cuboid's volume
whatever the strata are: a cell in the wrong stratum costs variance, never bias.

Points are drawn directly on the storage lattice (`uint16` codes, a whole number of lattice steps
per cell, uniform over the lattice points of the cell), so the stored points are exactly the
sampled ones and the labels are exact for them.

Labels: points of interior and exterior cells take their cell's winding number. Points of boundary
cells get theirs from Embree ray crossings along both directions of a grid axis, each up to the
nearest surface-free cell on that grid line (or to infinity): w(p) = w(cell) + signed crossings.
The two must agree; where they do not, `WindingNumber` decides (other lines, then the exact sum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from shapepose.sampling.inside import WindingNumber

STRATA = ("interior", "boundary", "exterior")
DEFAULT_STRATA = {"interior": 0.25, "boundary": 0.5, "exterior": 0.25}
INTERIOR, BOUNDARY, EXTERIOR = 0, 1, 2
CODE_LEVELS = 65536  # uint16 lattice positions per axis

WEIGHTS_DEFINITION = (
    "weight = (1/N)/p with p the sampling density relative to uniform over the cuboid; "
    "for stratum s: (cells_s / cells_total) / points_s. Weights sum to 1 per frame and "
    "sum(weights * inside) is an unbiased estimate of the inside fraction of the cuboid volume"
)


@dataclass(frozen=True)
class CuboidGrid:
    """A cuboid tiled into cells, and the uint16 lattice that points are drawn on.

    lower: (3,) float64 min corner; size: (3,) float64 edge lengths; cells: (3,) int64 cells per
    axis; steps: (3,) int64 lattice steps per cell. Code q on an axis is the point
    lower + (q + 0.5) * scale: the centre of lattice step q.
    """

    lower: np.ndarray
    size: np.ndarray
    cells: np.ndarray
    steps: np.ndarray

    @property
    def cell_dims(self) -> np.ndarray:
        return self.size / self.cells

    @property
    def scale(self) -> np.ndarray:
        """(3,) float64 metres per code step."""
        return self.size / (self.cells * self.steps)

    @property
    def origin(self) -> np.ndarray:
        """(3,) float64 position of code (0, 0, 0)."""
        return self.lower + 0.5 * self.scale

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Lattice codes (N, 3) -> points (N, 3) float64."""
        return self.origin + codes * self.scale

    def cell_centers(self, flat_cells: np.ndarray) -> np.ndarray:
        """Flat cell indices (K,) -> cell centres (K, 3) float64."""
        ijk = np.stack(np.unravel_index(flat_cells, tuple(self.cells)), axis=1)
        return self.lower + (ijk + 0.5) * self.cell_dims


def make_grid(center: np.ndarray, cuboid, cell_size: float) -> CuboidGrid:
    """Tile the cuboid of edge lengths `cuboid` (3,) centred at `center` (3,) into cells.

    Cell counts per axis are round(edge / cell_size), at least 1, so cells tile the cuboid exactly
    and are within a rounding of `cell_size`.
    """
    size = np.asarray(cuboid, dtype=np.float64).reshape(3)
    if not (np.all(np.isfinite(size)) and np.all(size > 0)):
        raise ValueError(f"cuboid edges must be positive, got {cuboid}")
    if not cell_size > 0:
        raise ValueError(f"cell_size must be positive, got {cell_size}")
    cells = np.maximum(1, np.rint(size / cell_size)).astype(np.int64)
    if np.any(cells > CODE_LEVELS):
        raise ValueError(f"cell_size {cell_size} gives more than {CODE_LEVELS} cells on an axis")
    steps = CODE_LEVELS // cells
    lower = np.asarray(center, dtype=np.float64).reshape(3) - 0.5 * size
    return CuboidGrid(lower=lower, size=size, cells=cells, steps=steps)


def cuboid_center(vertices: np.ndarray, center) -> np.ndarray:
    """The cuboid centre: the mesh's bounding-box centre for "bbox", else the given (3,) point."""
    if isinstance(center, str):
        if center != "bbox":
            raise ValueError(f"center must be 'bbox' or three numbers, got {center!r}")
        return 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    center = np.asarray(center, dtype=np.float64)
    if center.shape != (3,) or not np.all(np.isfinite(center)):
        raise ValueError(f"center must be 'bbox' or three finite numbers, got {center!r}")
    return center


def boundary_cells(grid: CuboidGrid, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Cells (nx, ny, nz) bool touched by the bounding box of at least one triangle.

    Conservative on purpose: a cell left False provably contains no part of the surface.
    """
    position = (np.asarray(vertices, dtype=np.float64) - grid.lower) / grid.cell_dims  # in cells
    # Dilating each box by 1e-4 cell (microns) keeps "touching" on the safe side of rounding,
    # float32 ray arithmetic included.
    low = np.floor(position - 1e-4).astype(np.int64)[faces]  # (F, 3 corners, 3)
    high = np.floor(position + 1e-4).astype(np.int64)[faces]
    first = np.maximum(np.minimum(np.minimum(low[:, 0], low[:, 1]), low[:, 2]), 0)
    last = np.minimum(np.maximum(np.maximum(high[:, 0], high[:, 1]), high[:, 2]), grid.cells - 1)
    keep = np.all(last >= first, axis=1)
    first, last = first[keep], last[keep]
    span = last - first + 1  # (K, 3) cells per axis of each triangle's box
    per_triangle = span.prod(axis=1)
    owner = np.repeat(np.arange(len(span)), per_triangle)
    start = np.repeat(np.cumsum(per_triangle) - per_triangle, per_triangle)
    local = np.arange(per_triangle.sum()) - start  # position within the owner's box
    sy, sz = span[owner, 1], span[owner, 2]
    i = first[owner, 0] + local // (sy * sz)
    j = first[owner, 1] + (local // sz) % sy
    k = first[owner, 2] + local % sz
    marked = np.zeros(tuple(grid.cells), dtype=bool)
    marked[i, j, k] = True
    return marked


def cell_winding(grid: CuboidGrid, boundary: np.ndarray, winding: WindingNumber) -> np.ndarray:
    """Integer winding number (nx, ny, nz) int32 of every surface-free cell (0 on boundary cells).

    Face-connected surface-free cells share one winding number, so one evaluation per component
    suffices.
    """
    components, n_components = ndimage.label(~boundary)  # 6-connectivity: shared faces
    flat = components.ravel()
    labels, first_cell = np.unique(flat, return_index=True)
    first_cell = first_cell[labels > 0]
    values = np.zeros(n_components + 1, dtype=np.int32)
    values[1:] = np.rint(winding(grid.cell_centers(first_cell))).astype(np.int32)
    return values[components]


def classify_cells(boundary: np.ndarray, windings: np.ndarray) -> np.ndarray:
    """Stratum (nx, ny, nz) int8 of every cell: INTERIOR, BOUNDARY or EXTERIOR."""
    return np.where(boundary, BOUNDARY, np.where(windings >= 1, INTERIOR, EXTERIOR)).astype(np.int8)


def normalized_fractions(strata: dict[str, float]) -> np.ndarray:
    """Strata fractions (3,) float64 in STRATA order, summing to 1; each must be positive."""
    if set(strata) != set(STRATA):
        raise ValueError(f"strata must name exactly {STRATA}, got {sorted(strata)}")
    fractions = np.array([float(strata[name]) for name in STRATA])
    # A stratum without points would leave part of the cuboid unsampled: biased weights.
    if not np.all(fractions > 0):
        raise ValueError(f"every strata fraction must be positive, got {strata}")
    return fractions / fractions.sum()


def allocate_points(
    n_points: int, cells_per_stratum: np.ndarray, fractions: np.ndarray
) -> np.ndarray:
    """Points per stratum (3,) int64 summing to n_points, by largest remainder.

    Empty strata get none and their share goes to the others in proportion; every non-empty
    stratum gets at least one point, so that every cell can be drawn.
    """
    occupied = cells_per_stratum > 0
    if n_points < occupied.sum():
        raise ValueError(f"n_points {n_points} is fewer than the {occupied.sum()} non-empty strata")
    share = np.where(occupied, fractions, 0.0)
    share = share / share.sum() * n_points
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: n_points - counts.sum()]] += 1
    for s in np.flatnonzero(occupied & (counts == 0)):
        counts[np.argmax(counts)] -= 1
        counts[s] = 1
    return counts


def draw_codes(
    grid: CuboidGrid, strata: np.ndarray, points_per_stratum: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw lattice codes (N, 3) uint16 and their stratum (N,) int8: per stratum a uniform cell,
    then a uniform lattice point in it."""
    codes, stratum = [], []
    flat = strata.ravel()
    for s in range(len(STRATA)):
        n = int(points_per_stratum[s])
        if n == 0:
            continue
        cells = np.flatnonzero(flat == s)
        picked = cells[rng.integers(0, len(cells), size=n)]
        ijk = np.stack(np.unravel_index(picked, tuple(grid.cells)), axis=1)
        within = np.stack([rng.integers(0, steps, size=n) for steps in grid.steps], axis=1)
        codes.append(ijk * grid.steps + within)
        stratum.append(np.full(n, s, dtype=np.int8))
    return np.concatenate(codes).astype(np.uint16), np.concatenate(stratum)


def stratum_weights(cells_per_stratum: np.ndarray, points_per_stratum: np.ndarray) -> np.ndarray:
    """Weight (3,) float64 of one point of each stratum: (cells_s / cells_total) / points_s."""
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = cells_per_stratum / cells_per_stratum.sum() / points_per_stratum
    return np.where(points_per_stratum > 0, weights, 0.0)


def label_points(
    grid: CuboidGrid, codes: np.ndarray, windings: np.ndarray, boundary: np.ndarray,
    winding: WindingNumber,
) -> np.ndarray:
    """Inside labels (N,) bool for lattice codes (N, 3) (see the module doc for how).

    A boundary point's line runs along the grid axis on which the surface-free cells on both
    sides of it are nearest: the shortest segments cross the fewest faces.
    """
    cell = (codes // grid.steps).astype(np.int64)
    flat = np.ravel_multi_index(tuple(cell.T), boundary.shape)
    inside = windings.ravel()[flat] >= 1
    near = np.flatnonzero(boundary.ravel()[flat])
    if near.size == 0:
        return inside
    points = grid.decode(codes[near])
    cell, flat = cell[near], flat[near]
    strides = np.array([boundary.shape[1] * boundary.shape[2], boundary.shape[2], 1])
    t_after = np.empty((3, len(near)))
    t_before = np.empty((3, len(near)))
    ref_after = np.empty((3, len(near)), dtype=np.int64)  # flat index of the free cell, -1: none
    ref_before = np.empty((3, len(near)), dtype=np.int64)
    for axis in range(3):
        after, before = (x.ravel()[flat] for x in _free_cells_along(boundary, axis))
        has_after = after < grid.cells[axis]
        has_before = before >= 0
        # Segments end on the near face of the free cell; past the grid, rays run to infinity.
        face_after = grid.lower[axis] + after * grid.cell_dims[axis]
        face_before = grid.lower[axis] + (before + 1) * grid.cell_dims[axis]
        t_after[axis] = np.where(has_after, face_after - points[:, axis], np.inf)
        t_before[axis] = np.where(has_before, points[:, axis] - face_before, np.inf)
        ref_after[axis] = np.where(has_after, flat + (after - cell[:, axis]) * strides[axis], -1)
        ref_before[axis] = np.where(has_before, flat + (before - cell[:, axis]) * strides[axis], -1)
    best = np.argmin(np.minimum(t_after + t_before, 1e30), axis=0)
    rows = np.arange(len(near))
    ref_after, ref_before = ref_after[best, rows], ref_before[best, rows]
    cell_windings = windings.ravel()
    values, agreed = winding.line_winding(
        points, np.eye(3)[best],
        t_after[best, rows], np.where(ref_after >= 0, cell_windings[ref_after], 0),
        t_before[best, rows], np.where(ref_before >= 0, cell_windings[ref_before], 0),
    )
    values = values.astype(np.float64)
    values[~agreed] = winding(points[~agreed])
    inside[near] = values > 0.5
    return inside


def _free_cells_along(boundary: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """For every cell, the index along `axis` of the nearest surface-free cell after it and before
    it on its grid line: (nx, ny, nz) int64 each, n_axis or -1 where there is none."""
    free = np.moveaxis(~boundary, axis, 0)
    n = free.shape[0]
    index = np.arange(n).reshape((n,) + (1,) * (free.ndim - 1))
    at_or_after = np.minimum.accumulate(np.where(free, index, n)[::-1], axis=0)[::-1]
    after = np.full(free.shape, n, dtype=np.int64)
    after[:-1] = at_or_after[1:]
    at_or_before = np.maximum.accumulate(np.where(free, index, -1), axis=0)
    before = np.full(free.shape, -1, dtype=np.int64)
    before[1:] = at_or_before[:-1]
    return np.moveaxis(after, 0, axis), np.moveaxis(before, 0, axis)


@dataclass(frozen=True)
class VolumeSamples:
    """Labelled, weighted points of one frame, on the lattice of their cuboid.

    codes: (N, 3) uint16; origin, scale: (3,) float64 with point = origin + code * scale;
    inside: (N,) bool; weights: (N,) float64; cells_per_stratum, points_per_stratum: (3,) int64
    in STRATA order; vertices_outside: fraction of mesh vertices outside the cuboid.
    """

    codes: np.ndarray
    origin: np.ndarray
    scale: np.ndarray
    inside: np.ndarray
    weights: np.ndarray
    cells_per_stratum: np.ndarray
    points_per_stratum: np.ndarray
    vertices_outside: float

    @property
    def points(self) -> np.ndarray:
        """(N, 3) float64 decoded points."""
        return self.origin + self.codes * self.scale


def sample_volume_points(
    vertices: np.ndarray,
    faces: np.ndarray,
    n_points: int,
    rng: np.random.Generator,
    *,
    cuboid=(1.0, 2.0, 1.0),
    center="bbox",
    cell_size: float = 0.04,
    strata: dict[str, float] | None = None,
) -> VolumeSamples:
    """Draw n_points labelled, weighted points in a cuboid around the mesh (see module doc).

    vertices: (V, 3) float, faces: (F, 3) int, a closed mesh oriented outward. center: "bbox" (the
    mesh's bounding-box centre) or a fixed (3,) point. strata: fractions of points per stratum.
    The result's `vertices_outside` is the fraction of vertices outside the cuboid, for the
    caller to warn about: samples never cover those parts.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    fractions = normalized_fractions(DEFAULT_STRATA if strata is None else strata)
    grid = make_grid(cuboid_center(vertices, center), cuboid, cell_size)
    beyond = (vertices < grid.lower) | (vertices > grid.lower + grid.size)
    outside = float(np.mean(np.any(beyond, axis=1)))

    winding = WindingNumber(vertices, faces)
    boundary = boundary_cells(grid, vertices, faces)
    windings = cell_winding(grid, boundary, winding)
    cell_strata = classify_cells(boundary, windings)
    cells_per_stratum = np.bincount(cell_strata.ravel(), minlength=len(STRATA)).astype(np.int64)
    points_per_stratum = allocate_points(n_points, cells_per_stratum, fractions)
    codes, stratum = draw_codes(grid, cell_strata, points_per_stratum, rng)
    inside = label_points(grid, codes, windings, boundary, winding)
    weights = stratum_weights(cells_per_stratum, points_per_stratum)[stratum]
    return VolumeSamples(
        codes=codes, origin=grid.origin, scale=grid.scale, inside=inside, weights=weights,
        cells_per_stratum=cells_per_stratum, points_per_stratum=points_per_stratum,
        vertices_outside=outside,
    )
