#!/usr/bin/python3
"""Before/after rendering of a defaced head phantom -> docs/deface_before_after.png.

    /usr/bin/python3 scripts/render_deface.py [BUILD_DIR] [OUT_PNG]

Runs BUILD_DIR/bench/rapidnii_deface_demo (a CT head phantom, 1 mm voxels,
defaced with --deface remove and blur), then draws, for the original and both
results: the skin surface seen from the front and from the right (first voxel
above -500 HU along each ray, shaded from the depth map's normals), and the
mid-sagittal slice (window -160..240 HU), which shows the brain untouched.
Needs numpy and PIL (Debian: python3-numpy, python3-pil).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def load(d):
    with open(os.path.join(d, "dims.txt")) as f:
        nx, ny, nz = (int(v) for v in f.readline().split())
        aff = np.array([[float(v) for v in f.readline().split()] for _ in range(3)])
    if not np.allclose(np.abs(aff[:, :3]), np.diag(np.abs(np.diag(aff[:, :3])))) or np.any(
        np.diag(aff[:, :3]) <= 0
    ):
        sys.exit("render_deface: expected an axial RAS grid")
    vols = {}
    for name in ("before", "remove", "blur"):
        raw = np.fromfile(os.path.join(d, name + ".raw"), dtype="<i2")
        vols[name] = raw.reshape(nz, ny, nx).transpose(2, 1, 0)  # [x, y, z]
    return vols


def shade(depth, hit):
    """Lambertian shading of a depth map (larger depth = nearer the viewer)."""
    d = np.where(hit, depth, np.nan).astype(float)
    fill = np.nanmin(d) if np.any(hit) else 0.0
    d = np.where(hit, d, fill)
    gy, gx = np.gradient(d)
    n = np.stack([-gx, -gy, np.ones_like(d)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    light = np.array([-0.4, -0.5, 1.0])
    light /= np.linalg.norm(light)
    img = 0.15 + 0.85 * np.clip(n @ light, 0, 1)
    return np.where(hit, img * 255, 0).astype(np.uint8)


def surface_front(v, thr=-500):
    """Camera in front of the face (+y), looking to -y; image rows = z (top
    superior), columns = patient's right on the left."""
    m = v > thr  # [x, y, z]
    ny = m.shape[1]
    hit = m.any(axis=1)
    first = ny - 1 - np.argmax(m[:, ::-1, :], axis=1)  # largest y with tissue
    img = shade(first.T[::-1, ::-1].astype(float), hit.T[::-1, ::-1])
    return img


def surface_right(v, thr=-500):
    """Camera at the patient's right (+x), looking to -x; anterior on the right."""
    m = v > thr
    nx = m.shape[0]
    hit = m.any(axis=0)
    first = nx - 1 - np.argmax(m[::-1, :, :], axis=0)  # largest x with tissue
    return shade(first.T[::-1, :].astype(float), hit.T[::-1, :])


def mid_sagittal(v, lo=-160.0, hi=240.0):
    s = v[v.shape[0] // 2, :, :].astype(float)  # [y, z]
    return (np.clip((s - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8).T[::-1, :]


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "docs", "deface_before_after.png")
    tool = os.path.join(build, "bench", "rapidnii_deface_demo")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([tool, d], check=True)
        vols = load(d)
        with open(os.path.join(d, "report.txt")) as f:
            report = f.read().strip()
    print(report)
    cols = [("before", "original"), ("remove", "--deface remove"), ("blur", "--deface blur")]
    rows = [surface_front, surface_right, mid_sagittal]
    panels = [[r(vols[c]) for c, _ in cols] for r in rows]
    pad, title = 4, 14
    heights = [p[0].shape[0] for p in panels]
    widths = [max(p[j].shape[1] for p in panels) for j in range(len(cols))]
    canvas = Image.new("L", (sum(widths) + pad * (len(cols) + 1), sum(heights) + title + pad * (len(rows) + 1)), 24)
    draw = ImageDraw.Draw(canvas)
    x = pad
    for j, (_, label) in enumerate(cols):
        draw.text((x + 4, 2), label, fill=230)
        x += widths[j] + pad
    y = title + pad
    for i, row in enumerate(panels):
        x = pad
        for j, img in enumerate(row):
            canvas.paste(Image.fromarray(img), (x, y))
            x += widths[j] + pad
        y += heights[i] + pad
    # Half size keeps the file small; the features stay visible.
    canvas = canvas.resize((canvas.width * 3 // 4, canvas.height * 3 // 4), Image.LANCZOS)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    canvas.save(out, optimize=True)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
