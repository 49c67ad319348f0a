"""Rasterize shaded capsules with a z-buffer, and paint textured backgrounds (used by `posekit.synth`).

A capsule is the set of points within a radius of a 3D segment: the radius is interpolated
linearly along the segment, so a capsule with a (near) zero-length segment is a sphere.
Rendering is orthographic: pixel (x, y) looks along +z (depth grows away from the camera),
pixel centres sit at integer coordinates. For every pixel the nearest capsule surface wins
(a z-buffer); its depth is the segment's depth at the closest point minus the height of the
sphere-swept surface, sqrt(r² − d²), and its shade is a Lambert term of that surface normal.

The per-pixel work runs in `jax.jit` kernels: XLA fuses the loop over capsules into one pass over the pixels,
and each capsule is only evaluated on the 16×16 tiles its bounding box touches (`raster`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

# Colours are float RGB in [0, 255].
AMBIENT = 0.42


def _hash_noise(seed, shape):
    """Uniform noise in [-1, 1) from an integer hash of (per-image seed, pixel index): cheap and fused by XLA.

    seed: (N,) uint32; shape: (N, ...) -> float32 array of `shape`.
    """
    n = int(np.prod(shape[1:]))
    idx = jnp.arange(n, dtype=jnp.uint32).reshape(shape[1:])[None]
    h = idx * jnp.uint32(0x9E3779B1) + seed.reshape((-1,) + (1,) * (len(shape) - 1)) * jnp.uint32(0x85EBCA77)
    h = h ^ (h >> 15)
    h = h * jnp.uint32(0x2C1B3C6D)
    h = h ^ (h >> 12)
    h = h * jnp.uint32(0x297A2D39)
    h = h ^ (h >> 15)
    return (h >> 8).astype(jnp.float32) * (2.0 / (1 << 24)) - 1.0


def _upsample(grid, S: int):
    """Bilinear upsampling of per-image grids (N, g, g, C) spanning the image to (N, S, S, C): two taps per axis."""
    g = grid.shape[1]
    pos = np.linspace(0, g - 1, S)
    i0 = np.clip(np.floor(pos).astype(np.int32), 0, g - 2)
    w = jnp.asarray((pos - i0).astype(np.float32))
    rows = grid[:, i0] * (1 - w)[None, :, None, None] + grid[:, i0 + 1] * w[None, :, None, None]
    return rows[:, :, i0] * (1 - w)[None, None, :, None] + rows[:, :, i0 + 1] * w[None, None, :, None]


def _background(bg, S):
    """Textured background (N, S, S, 3) float in [0, 255] from per-image parameters (see `sample_background`)."""
    # Coarse (4×4) and fine (13×13) smooth colour noise: the coarse grid's nodes are fine-grid nodes, so
    # interpolating it onto the fine grid first and upsampling once gives the same image as two upsamplings.
    coarse_on_fine = jnp.einsum("fg,nghc,eh->nfec", _C2F, bg["coarse"], _C2F)
    img = bg["base"][:, None, None, :] + _upsample(coarse_on_fine + bg["fine"], S)
    ys = jnp.arange(S, dtype=jnp.float32)[None, :, None]
    xs = jnp.arange(S, dtype=jnp.float32)[None, None, :]
    st = bg["stripes"]  # (N, 5): frequency (rad/px), direction cos, sin, phase, sharpness
    col = lambda a: a[:, None, None]
    # Stripes: a triangle wave (cheaper than sin) sharpened and clipped to [-1, 1].
    u = (col(st[:, 0]) * (xs * col(st[:, 1]) + ys * col(st[:, 2])) + col(st[:, 3])) * (1 / (2 * np.pi))
    w = jnp.clip(col(st[:, 4]) * (4.0 * jnp.abs(u - jnp.floor(u) - 0.5) - 1.0), -1.0, 1.0)
    gr = bg["gradient"]  # (N, 2): direction cos, sin
    ramp = (xs * col(gr[:, 0]) + ys * col(gr[:, 1])) / S - 0.5
    img = img + w[..., None] * bg["stripe_col"][:, None, None, :] + ramp[..., None] * bg["grad_col"][:, None, None, :]
    return img


def _interp_matrix(S: int, g: int) -> np.ndarray:
    """(S, g) linear-interpolation weights from a g-point grid spanning the image to S pixel centres."""
    pos = np.linspace(0, g - 1, S)
    i0 = np.clip(np.floor(pos).astype(int), 0, g - 2)
    w = pos - i0
    M = np.zeros((S, g), np.float32)
    M[np.arange(S), i0] = 1 - w
    M[np.arange(S), i0 + 1] = w
    return M


def untile(rgb):
    """Colour tiles (N, S/t, S/t, t, t, 3) -> images (N, S, S, 3) (numpy or jax)."""
    N, nt, _, ts = rgb.shape[:4]
    return rgb.swapaxes(2, 3).reshape(N, nt * ts, nt * ts, 3)


@partial(jax.jit, static_argnames=("S",))
def finish(rgb, fg, noise_seed, noise_amp, bg, S: int):
    """Final images (N, S, S, 3) uint8: shaded capsule colours `rgb` (tiles, see `raster`) where `fg` (N, S, S)
    is set, else the textured background of parameters `bg`; plus mild triangular noise of amplitude
    `noise_amp` (N,) grey levels.
    """
    N = rgb.shape[0]
    rgb = untile(rgb).astype(jnp.float32)
    out = jnp.where(fg[..., None], rgb, _background(bg, S))
    noise = _hash_noise(noise_seed, (N, S, S, 3)) + _hash_noise(noise_seed ^ jnp.uint32(0x5BD1E995), (N, S, S, 3))
    out = out + noise * noise_amp[:, None, None, None]
    return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)


# ----------------------------------------------------------------------------------------------------------------
# Tiled rasterization: each capsule is evaluated only on the 16×16 tiles its bounding box touches. Tiles are
# grouped by how many capsules touch them (at most 1, 2, 3, 4, 6, ... 16), and each group runs through one jitted
# kernel with that many capsule slots, so the work follows the scene's content rather than K × pixels.
# Capsule slots per kernel call: a tile goes to the smallest level that holds its capsules (most tiles hold one to
# four, and an empty slot costs as much as a full one); tiles with more take several passes of the largest.
_LEVELS = (1, 2, 3, 4, 6, 8, 12, 16)
_TILE_CHUNK = 256  # tiles per kernel call (fixed shape: one compilation per level; small, so little padding)


@partial(jax.jit, static_argnames=("ts",))
def _tile_kernel(caps, tl, init, ts: int):
    """Z-buffer one tile per row. caps (T, M, 12): per capsule slot the ends A, B (3 + 3), radii (2), colour (3)
    and capsule id (as a float); tl (T, 6): light direction (3), pixel of the tile's top-left (2) and the label
    of empty pixels; init: None for a tile's first pass, else its zbuf, label (T, ts, ts) and colour
    (T, ts, ts, 3) uint8 so far (a tile's capsules can come in several passes). Returns the updated three.
    (Few, packed arguments: each argument of a call costs a transfer.)"""
    A, B, R, C, kid = caps[..., 0:3], caps[..., 3:6], caps[..., 6:8], caps[..., 8:11], caps[..., 11].astype(jnp.int32)
    L, origin = tl[:, 0:3], tl[:, 3:5]
    if init is None:
        zb0 = jnp.full((tl.shape[0], ts, ts), jnp.inf, jnp.float32)
        lab0 = jnp.broadcast_to(tl[:, 5, None, None].astype(jnp.int32), zb0.shape)
        rgb0 = jnp.zeros(zb0.shape + (3,), jnp.uint8)
    else:
        zb0, lab0, rgb0 = init
    T, M = A.shape[:2]
    G = M if M <= 8 else M // 2  # capsules unrolled per scan step
    col = lambda a: a[:, None, None]
    ys = origin[:, 1, None, None].astype(jnp.float32) + jnp.arange(ts, dtype=jnp.float32)[None, :, None]
    xs = origin[:, 0, None, None].astype(jnp.float32) + jnp.arange(ts, dtype=jnp.float32)[None, None, :]
    lx, ly, lz = col(L[:, 0]), col(L[:, 1]), col(L[:, 2])
    D = B - A
    inv = 1.0 / jnp.maximum(D[..., 0] ** 2 + D[..., 1] ** 2, 1e-6)
    per_step = lambda a: jnp.moveaxis(a.reshape((T, M // G, G) + a.shape[2:]), 1, 0)
    xs_ = (per_step(A), per_step(D), per_step(R), per_step(inv), jnp.arange(0, M, G, dtype=jnp.int32))

    # The loop keeps, per pixel, the winner's depth, slot, Lambert numerator and radius; the shade, colour and
    # capsule id of the winner are looked up once at the end (cheaper than blending colours for every slot).
    def body(carry, x):
        zb, slot, num, rad = carry
        a_, d_, rr, iv, step = x
        for k in range(G):
            ax, ay, az = col(a_[:, k, 0]), col(a_[:, k, 1]), col(a_[:, k, 2])
            dx, dy, dz = col(d_[:, k, 0]), col(d_[:, k, 1]), col(d_[:, k, 2])
            ra, dr = col(rr[:, k, 0]), col(rr[:, k, 1] - rr[:, k, 0])
            px, py = xs - ax, ys - ay
            t = jnp.clip((px * dx + py * dy) * col(iv[:, k]), 0.0, 1.0)
            ex, ey = px - t * dx, py - t * dy
            r = ra + t * dr
            h2 = r * r - (ex * ex + ey * ey)
            hz = jnp.sqrt(jnp.maximum(h2, 0.0))
            z = az + t * dz - hz
            win = (h2 > 0.0) & (z < zb)
            zb = jnp.where(win, z, zb)
            slot = jnp.where(win, step + k, slot)
            # Lambert: the surface normal is (ex, ey, -hz) / r; L points towards the light.
            num = jnp.where(win, ex * lx + ey * ly - hz * lz, num)
            rad = jnp.where(win, r, rad)
        return (zb, slot, num, rad), None

    zeros = jnp.zeros_like(zb0)
    init = (zb0, jnp.full(zb0.shape, -1, jnp.int32), zeros, zeros)
    (zb, slot, num, rad), _ = jax.lax.scan(body, init, xs_)
    won = slot >= 0
    flat = jnp.maximum(slot, 0).reshape(T, ts * ts)
    lab = jnp.where(won, jnp.take_along_axis(kid, flat, axis=1).reshape(T, ts, ts), lab0)
    colour = jnp.take_along_axis(C, flat[..., None], axis=1).reshape(T, ts, ts, 3)
    s = AMBIENT + (1.0 - AMBIENT) * jnp.maximum(num / jnp.maximum(rad, 1e-3), 0.0)
    shaded = jnp.clip(jnp.round(s[..., None] * colour), 0, 255).astype(jnp.uint8)  # a quarter of float32's bytes
    rgb = jnp.where(won[..., None], shaded, rgb0)
    return zb, lab, rgb


def _pad_rows(a: np.ndarray, n: int, fill=0) -> np.ndarray:
    """`a` with rows of `fill` appended up to n rows."""
    return np.concatenate([a, np.full((n - a.shape[0],) + a.shape[1:], fill, a.dtype)]) if a.shape[0] < n else a


def _capsule_tiles(A, B, rmax, S: int, ts: int):
    """The (capsule, tile) pairs to draw: capsule index n·K + k and tile index (n, ty, tx), sorted by tile.

    A tile is kept when the capsule can reach one of its pixels; within a tile, capsules stay in index order
    (painting order decides depth ties).
    """
    N, K = A.shape[:2]
    nt = S // ts
    # Pixel rows/columns each capsule can touch, then the tiles.
    x0 = np.ceil(np.minimum(A[..., 0], B[..., 0]) - rmax)
    x1 = np.floor(np.maximum(A[..., 0], B[..., 0]) + rmax)
    y0 = np.ceil(np.minimum(A[..., 1], B[..., 1]) - rmax)
    y1 = np.floor(np.maximum(A[..., 1], B[..., 1]) + rmax)
    valid = (rmax > 0) & (x1 >= 0) & (y1 >= 0) & (x0 <= S - 1) & (y0 <= S - 1)
    tx0 = (np.clip(x0, 0, S - 1) // ts).astype(np.int64)
    tx1 = (np.clip(x1, 0, S - 1) // ts).astype(np.int64)
    ty0 = (np.clip(y0, 0, S - 1) // ts).astype(np.int64)
    ty1 = (np.clip(y1, 0, S - 1) // ts).astype(np.int64)
    nx = tx1 - tx0 + 1
    cnt = np.where(valid, nx * (ty1 - ty0 + 1), 0).reshape(-1)
    cap = np.repeat(np.arange(N * K), cnt)  # one entry per (capsule, tile) pair, capsules in (n, k) order
    local = np.arange(cap.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    nxf = nx.reshape(-1)[cap]
    tx = tx0.reshape(-1)[cap] + local % nxf
    ty = ty0.reshape(-1)[cap] + local // nxf
    # Drop the pairs whose tile the capsule's box touches but the capsule itself cannot (diagonal limbs): a pixel
    # within r of the segment lies within r + (ts − 1)/√2 of it from the tile's centre.
    a2, b2 = A[..., :2].reshape(-1, 2)[cap], B[..., :2].reshape(-1, 2)[cap]
    d2 = b2 - a2
    c2 = np.stack([tx, ty], -1) * ts + (ts - 1) / 2 - a2
    t = np.clip((c2 * d2).sum(-1) / np.maximum((d2 * d2).sum(-1), 1e-12), 0.0, 1.0)
    near = np.hypot(*(c2 - t[:, None] * d2).T) <= rmax.reshape(-1)[cap] + (ts - 1) * 0.7072 + 0.01
    cap, tx, ty = cap[near], tx[near], ty[near]
    tile = (cap // K) * nt * nt + ty * nt + tx
    order = np.argsort(tile, kind="stable")  # stable: within a tile, capsules stay in index order
    return cap[order], tile[order]


def raster(starts, ends, radii, colours, light, size: int):
    """Z-buffer capsules into images: one size×size image per row of capsules.

    starts, ends (N, K, 3): the capsules' end points (x, y, depth) in pixels; radii (N, K, 2) the radius at each
    end (0 = no capsule); colours (N, K, 3); light (N, 3) each image's light direction.
    Returns zbuf (N, S, S) float32 (inf where empty), label (N, S, S) int32 (the winning capsule's index,
    K where empty), colour tiles (N, S/t, S/t, t, t, 3) uint8 (shaded, rounded, 0 where empty; `untile` gives
    (N, S, S, 3)). Pure numpy in, numpy out.
    """
    A, B, R, C, L = (np.asarray(a, np.float32) for a in (starts, ends, radii, colours, light))
    S = size
    N, K = A.shape[:2]
    ts = next(t for t in (16, 8, 4, 2, 1) if S % t == 0)
    nt = S // ts
    cap, tile = _capsule_tiles(A, B, R.max(-1), S, ts)
    per_tile = np.bincount(tile, minlength=N * nt * nt)
    first = np.cumsum(per_tile) - per_tile
    pos = np.arange(cap.size) - first[tile]

    # Depth and label live in image layout (N, S/ts, ts, S/ts, ts): tile (n, ty, tx) is [n, ty, :, tx, :], and
    # the (N, S, S) result is a free reshape.
    zb = np.full((N, nt, ts, nt, ts), np.inf, np.float32)
    lab = np.full((N, nt, ts, nt, ts), K, np.int32)
    rgb = np.zeros((N * nt * nt, ts, ts, 3), np.uint8)
    null = N * K
    flat = lambda a, fill=0.0: np.concatenate(
        [a.reshape((N * K,) + a.shape[2:]), np.full((1,) + a.shape[2:], fill, a.dtype)]
    )
    kidf = np.concatenate([np.tile(np.arange(K, dtype=np.float32), N), np.array([K], np.float32)])
    capf = np.concatenate([flat(A), flat(B), flat(R), flat(C), kidf[:, None]], 1)
    # Each tile in one call of the smallest level that holds its capsules; busier tiles in passes of the largest,
    # in index order.
    lo, top = 0, _LEVELS[-1]
    schedule = []
    for M in _LEVELS[:-1]:
        schedule.append((M, (per_tile > lo) & (per_tile <= M), 0))
        lo = M
    schedule += [(top, (per_tile > lo) & (per_tile > off), off) for off in range(0, int(per_tile.max(initial=0)), top)]
    for M, chosen, off in schedule:
        tiles = np.flatnonzero(chosen)
        if tiles.size == 0:
            continue
        img_at = (tiles // (nt * nt), tiles // nt % nt, slice(None), tiles % nt, slice(None))
        row = np.full(N * nt * nt, -1, np.int64)
        row[tiles] = np.arange(tiles.size)
        sel = (row[tile] >= 0) & (pos >= off) & (pos < off + M)
        idx = np.full((tiles.size, M), null, np.int64)
        idx[row[tile[sel]], pos[sel] - off] = cap[sel]
        # Gather the level's inputs once, padded to whole chunks (padding rows: null capsules, empty tiles).
        n_pad = -(-tiles.size // _TILE_CHUNK) * _TILE_CHUNK
        idx = _pad_rows(idx, n_pad, null)
        caps = capf[idx]
        tl = np.zeros((n_pad, 6), np.float32)
        tl[: tiles.size, :3] = L[tiles // (nt * nt)]
        tl[: tiles.size, 3] = (tiles % nt) * ts
        tl[: tiles.size, 4] = (tiles // nt % nt) * ts
        tl[:, 5] = K
        init = None  # the tiles' first pass: empty buffers
        if off > 0:
            init = tuple(_pad_rows(a[at], n_pad) for a, at in ((zb, img_at), (lab, img_at), (rgb, tiles)))
        sl = lambda c: None if init is None else tuple(a[c : c + _TILE_CHUNK] for a in init)  # noqa: B023
        # Dispatch every chunk first: jax runs them asynchronously while Python moves on.
        pending = [
            _tile_kernel(caps[c : c + _TILE_CHUNK], tl[c : c + _TILE_CHUNK], sl(c), ts=ts)
            for c in range(0, n_pad, _TILE_CHUNK)
        ]
        for buf, at, j in ((zb, img_at, 0), (lab, img_at, 1), (rgb, tiles, 2)):
            buf[at] = np.concatenate([np.asarray(out[j]) for out in pending])[: tiles.size]
    # The colour stays tiled, (N, S/ts, S/ts, ts, ts, 3): `finish` untiles it inside XLA, saving a big copy.
    return zb.reshape(N, S, S), lab.reshape(N, S, S), rgb.reshape(N, nt, nt, ts, ts, 3)


def finish_batched(rgb, fg, noise_seed, noise_amp, bg: dict, S: int, chunk: int = 256) -> np.ndarray:
    """`finish` over any number of images in fixed-shape chunks (few compilations); (N, S, S, 3) uint8."""
    n = rgb.shape[0]
    n_to = chunk if n >= chunk else max(8, 1 << (n - 1).bit_length())
    out = []
    for c in range(0, n, n_to):
        part = pad_batch(
            {"rgb": rgb[c : c + n_to], "fg": fg[c : c + n_to], "noise_seed": noise_seed[c : c + n_to],
             "noise_amp": noise_amp[c : c + n_to], "bg": {k: v[c : c + n_to] for k, v in bg.items()}},
            n_to,
        )  # fmt: skip
        out.append((finish(**part, S=S), min(n_to, n - c)))  # asynchronous: collect afterwards
    return np.concatenate([np.asarray(o)[:m] for o, m in out])


_C2F = _interp_matrix(13, 4)  # coarse grid nodes -> fine grid nodes (exact: 13 = 3 * 4 + 1)


def sample_background(rng: np.random.Generator, n: int) -> dict:
    """Per-image background parameters: smooth noise at two scales, stripes, a gradient (all float32)."""
    sat = rng.uniform(0.15, 0.8, (n, 1))  # muted to saturated, like real scenes
    base = (1 - sat) * rng.uniform(30, 225, (n, 1)) + sat * rng.uniform(20, 235, (n, 3))
    coarse = rng.normal(0, 1, (n, 4, 4, 3)) * rng.uniform(10, 45, (n, 1, 1, 1))
    fine = rng.normal(0, 1, (n, 13, 13, 3)) * rng.uniform(0, 25, (n, 1, 1, 1))
    ang = rng.uniform(0, np.pi, n)
    has_stripes = rng.random(n) < 0.45
    stripes = np.stack(
        [rng.uniform(0.15, 1.2, n), np.cos(ang), np.sin(ang), rng.uniform(0, 2 * np.pi, n), rng.uniform(0.5, 6, n)],
        axis=1,
    )
    stripe_col = rng.normal(0, 1, (n, 3)) * rng.uniform(10, 50, (n, 1)) * has_stripes[:, None]
    gang = rng.uniform(0, 2 * np.pi, n)
    gradient = np.stack([np.cos(gang), np.sin(gang)], axis=1)
    grad_col = rng.normal(0, 1, (n, 3)) * rng.uniform(0, 70, (n, 1))
    out = dict(
        base=base,
        coarse=coarse,
        fine=fine,
        stripes=stripes,
        stripe_col=stripe_col,
        gradient=gradient,
        grad_col=grad_col,
    )
    return {k: v.astype(np.float32) for k, v in out.items()}


def pad_batch(tree: dict, n_to: int) -> dict:
    """Pad every array's first axis to `n_to` with zeros (padded capsules have radius 0: nothing is drawn)."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out[k] = pad_batch(v, n_to)
        else:
            v = np.asarray(v)
            if v.shape[0] == n_to:  # nothing to pad: no copy
                out[k] = v
                continue
            pad = np.zeros((n_to - v.shape[0],) + v.shape[1:], v.dtype)
            out[k] = np.concatenate([v, pad], axis=0)
    return out
