"""Plots drawn with Pillow: curves.png, three panels (negative ELBO, reconstruction, KL) against the epoch, train and
test in each; and `plot`, a general x–y plot with markers and a legend (docs/make_figures.py, benchmarks/).

Pillow is already a dependency (image grids); a line plot with axes, ticks and a legend is a few dozen lines, so the
package needs no plotting library and `minivae train` draws the curves every epoch on any install.
"""
import math

from PIL import Image, ImageDraw, ImageFont

from .images import save_image

PANELS = (("negative ELBO (nats)", "train_loss", ("test_loss",)),  # ASCII titles: Pillow's built-in font
          ("reconstruction -log p(x|z)", "train_recon", ("test_recon", "recon")),
          ("KL(q(z|x) || p(z))", "train_kl", ("test_kl", "kl")))
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
COLORS = {"train": PALETTE[0], "test": PALETTE[1]}
PANEL_W, PANEL_H, MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 300, 230, 56, 12, 26, 34


def nice_ticks(lo, hi, n=5):
    """About n round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        lo, hi = lo - 0.5 * max(1.0, abs(lo)) * 0.01 - 0.5, hi + 0.5 * max(1.0, abs(hi)) * 0.01 + 0.5
    raw = (hi - lo) / max(n - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks, t = [], first
    while not ticks or ticks[-1] < hi - 1e-9 * step or len(ticks) < 2:
        ticks.append(round(t, 12))
        t += step
    return ticks


def series(metrics, key, alternatives=()):
    """(epoch, value) pairs of `key` (or the first of `alternatives` a row has) over the rows that have one."""
    points = []
    for row in metrics:
        for k in (key, *alternatives):
            if isinstance(row.get(k), (int, float)) and math.isfinite(row[k]):
                points.append((row["epoch"], float(row[k])))
                break
    return points


def draw_panel(draw, font, x0, y0, title, lines):
    """One line plot in the box at (x0, y0): `lines` maps a legend label to its (epoch, value) points."""
    left, top = x0 + MARGIN_L, y0 + MARGIN_T
    right, bottom = x0 + PANEL_W - MARGIN_R, y0 + PANEL_H - MARGIN_B
    draw.text((left, y0 + 6), title, fill="black", font=font)
    points = [p for pts in lines.values() for p in pts]
    if not points:
        return
    epochs = [e for e, _ in points]
    values = [v for _, v in points]
    yt = nice_ticks(min(values), max(values))
    e_lo, e_hi = min(epochs), max(epochs)
    if e_hi == e_lo:
        e_lo, e_hi = e_lo - 1, e_hi + 1
    xt = nice_ticks(e_lo, e_hi, 6)
    xt = [t for t in xt if float(t).is_integer() and e_lo <= t <= e_hi] or [e_lo, e_hi]

    def px(e):
        return left + (e - e_lo) / (e_hi - e_lo) * (right - left)

    def py(v):
        return bottom - (v - yt[0]) / (yt[-1] - yt[0]) * (bottom - top)

    for t in yt:
        draw.line([(left, py(t)), (right, py(t))], fill=(230, 230, 230))
        draw.text((left - 4, py(t)), f"{t:g}", fill="black", font=font, anchor="rm")
    for t in xt:
        draw.line([(px(t), bottom), (px(t), bottom + 3)], fill="black")
        draw.text((px(t), bottom + 5), f"{int(t)}", fill="black", font=font, anchor="ma")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right) / 2, bottom + 18), "epoch", fill="black", font=font, anchor="ma")
    for i, (label, pts) in enumerate(lines.items()):
        color = COLORS[label]
        xy = [(px(e), py(v)) for e, v in pts]
        if len(xy) > 1:
            draw.line(xy, fill=color, width=2)
        for x, y in xy:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=color)
        lx, ly = right - 84 + 44 * i, y0 + 6
        draw.line([(lx, ly + 6), (lx + 14, ly + 6)], fill=color, width=2)
        draw.text((lx + 18, ly), label, fill="black", font=font)


def curves_image(metrics):
    """A Pillow image with the three panels for `metrics` (the rows of metrics.jsonl)."""
    font = ImageFont.load_default(size=11)
    img = Image.new("RGB", (PANEL_W * len(PANELS), PANEL_H), "white")
    draw = ImageDraw.Draw(img)
    for i, (title, train_key, test_keys) in enumerate(PANELS):
        lines = {"train": series(metrics, train_key), "test": series(metrics, test_keys[0], test_keys[1:])}
        draw_panel(draw, font, i * PANEL_W, 0, title, {k: v for k, v in lines.items() if v})
    return img


def save_curves(path, metrics):
    """Write curves.png for `metrics` (a list of dicts with "epoch", "train_loss", "test_loss", ...)."""
    save_image(path, curves_image(metrics))


def overlap(a, b):
    """Do the boxes (left, top, right, bottom) a and b intersect?"""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plot(path, title, xlabel, ylabel, series, hline=None, logx=False, logy=False, lines=True, point_labels=None):
    """An x–y plot of `series` {label: (xs, ys)} with markers, joined by lines unless `lines` is False, a legend, an
    optional horizontal line (label, y), log axes, and optional texts beside the points: {series label: [text for
    each point]}. Written to `path` (save_image)."""
    W, H, L, R, T, B = 640, 330, 70, 210, 28, 44
    font = ImageFont.load_default(size=12)
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    fx = (lambda v: math.log10(v)) if logx else float
    fy = (lambda v: math.log10(v)) if logy else float
    xs = [fx(x) for xs_, _ in series.values() for x in xs_]
    ys = [fy(y) for _, ys_ in series.values() for y in ys_] + ([fy(hline[1])] if hline else [])
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = 0.06 * (y1 - y0 or 1)
    y0, y1 = y0 - pad, y1 + pad
    if not lines:  # markers at the frame would be cut in half
        pad = 0.06 * (x1 - x0 or 1)
        x0, x1 = x0 - pad, x1 + pad

    def px(v):
        return L + (fx(v) - x0) / ((x1 - x0) or 1) * (W - L - R)

    def py(v):
        return H - B - (fy(v) - y0) / ((y1 - y0) or 1) * (H - T - B)

    d.rectangle([L, T, W - R, H - B], outline="black")
    d.text((L, 8), title, fill="black", font=font)
    d.text(((L + W - R) / 2, H - 16), xlabel, fill="black", font=font, anchor="ma")
    d.text((8, T - 14), ylabel, fill="black", font=font)
    for i in range(5):
        v = y0 + (y1 - y0) * i / 4
        yy = H - B - i / 4 * (H - T - B)
        d.line([(L, yy), (W - R, yy)], fill=(230, 230, 230))
        d.text((L - 4, yy), f"{10 ** v:.2g}" if logy else f"{v:.4g}", fill="black", font=font, anchor="rm")
    data_x = sorted({x for xs_, _ in series.values() for x in xs_})
    ticks = data_x if lines else [t for t in nice_ticks(data_x[0], data_x[-1]) if L <= px(t) <= W - R]
    for x in ticks:  # a line plot's x values are its ticks; a scatter's may crowd, so round ones
        d.text((px(x), H - B + 4), f"{x:g}", fill="black", font=font, anchor="ma")
    if hline:
        d.line([(L, py(hline[1])), (W - R, py(hline[1]))], fill="black", width=1)
        d.text((W - R + 6, py(hline[1])), hline[0], fill="black", font=font, anchor="lm")
    taken = []  # boxes of the point labels drawn so far
    for i, (label, (xs_, ys_)) in enumerate(series.items()):
        c = PALETTE[i % len(PALETTE)]
        pts = [(px(x), py(y)) for x, y in zip(xs_, ys_)]
        if lines and len(pts) > 1:
            d.line(pts, fill=c, width=2)
        for x, y in pts:
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=c)
        for (x, y), text in zip(pts, (point_labels or {}).get(label, ())):  # on the side with more room
            left_half = x < (L + W - R) / 2
            at, anchor = (x + 5 if left_half else x - 5, y - 3), "lb" if left_half else "rb"
            while any(overlap(d.textbbox(at, text, font=font, anchor=anchor), box) for box in taken):
                at = (at[0], at[1] - 13)  # one line up, until clear of the labels drawn before
            taken.append(d.textbbox(at, text, font=font, anchor=anchor))
            d.text(at, text, fill=c, font=font, anchor=anchor)
        d.line([(W - R + 6, T + 8 + 18 * i), (W - R + 20, T + 8 + 18 * i)], fill=c, width=3)
        d.text((W - R + 24, T + 2 + 18 * i), label, fill="black", font=font)
    save_image(path, img)
