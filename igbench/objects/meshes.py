"""Triangle meshes in numpy, and the few primitives the default object library is built from.

Faces wind counter-clockwise seen from outside (outward normals), so Blender shades them correctly and
BOP tools read them as they expect.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from igbench.files import write_text_atomic


@dataclass(frozen=True)
class Mesh:
    vertices: np.ndarray  # (N, 3) float
    faces: np.ndarray  # (M, 3) int

    def transformed(self, rotation=None, translation=(0.0, 0.0, 0.0), scale: float = 1.0) -> Mesh:
        R = np.eye(3) if rotation is None else np.asarray(rotation, float)
        return Mesh(self.vertices * scale @ R.T + np.asarray(translation, float), self.faces)

    def centred(self) -> Mesh:
        """Moved so that its bounding box is centred on the origin (igbench's canonical object frame)."""
        lo, hi = self.vertices.min(axis=0), self.vertices.max(axis=0)
        return Mesh(self.vertices - (lo + hi) / 2, self.faces)

    @staticmethod
    def merge(*meshes: Mesh) -> Mesh:
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
        return Mesh(np.concatenate([m.vertices for m in meshes]),
                    np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]))


def box(size_x: float, size_y: float, size_z: float, centre=(0.0, 0.0, 0.0)) -> Mesh:
    hx, hy, hz = size_x / 2, size_y / 2, size_z / 2
    v = np.array([[x, y, z] for z in (-hz, hz) for y in (-hy, hy) for x in (-hx, hx)], float)
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    faces = [f for a, b, c, d in quads for f in ((a, b, c), (a, c, d))]
    return Mesh(v + np.asarray(centre, float), np.array(faces))


def lathe(profile, segments: int = 40, cap_bottom: bool = True, cap_top: bool = True) -> Mesh:
    """Revolve a profile of (radius, z) points, listed bottom to top, about the z axis."""
    profile = np.asarray(profile, float)
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rings = [np.column_stack([r * np.cos(angles), r * np.sin(angles), np.full(segments, z)]) for r, z in profile]
    vertices = np.concatenate(rings)
    faces = []
    for i in range(len(profile) - 1):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            c, d = a + segments, b + segments
            faces += [(a, b, d), (a, d, c)]
    extra = []
    if cap_bottom and profile[0, 0] > 0:
        centre = len(vertices) + len(extra)
        extra.append([0.0, 0.0, profile[0, 1]])
        faces += [(centre, (j + 1) % segments, j) for j in range(segments)]
    if cap_top and profile[-1, 0] > 0:
        top = (len(profile) - 1) * segments
        centre = len(vertices) + len(extra)
        extra.append([0.0, 0.0, profile[-1, 1]])
        faces += [(centre, top + j, top + (j + 1) % segments) for j in range(segments)]
    if extra:
        vertices = np.concatenate([vertices, np.array(extra)])
    return Mesh(vertices, np.array(faces))


def cylinder(radius: float, height: float, segments: int = 40) -> Mesh:
    """Axis +z, centred on the origin."""
    return lathe([(radius, -height / 2), (radius, height / 2)], segments)


def sphere(radius: float, rings: int = 16, segments: int = 32) -> Mesh:
    theta = np.linspace(np.pi, 0, rings + 1)[1:-1]
    profile = [(1e-6, -radius)] + [(radius * np.sin(t), radius * np.cos(t)) for t in theta] + [(1e-6, radius)]
    return lathe(profile, segments, cap_bottom=False, cap_top=False)


def arc_tube(radius: float, tube: float, start_deg: float, end_deg: float, segments: int = 20, sides: int = 12) -> Mesh:
    """A tube swept along an arc of `radius` in the x-z plane (a handle), from start to end angle."""
    angles = np.radians(np.linspace(start_deg, end_deg, segments + 1))
    around = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    vertices = []
    for a in angles:
        centre = np.array([radius * np.cos(a), 0.0, radius * np.sin(a)])
        normal = np.array([np.cos(a), 0.0, np.sin(a)])
        for b in around:
            vertices.append(centre + tube * (np.cos(b) * normal + np.sin(b) * np.array([0.0, 1.0, 0.0])))
    faces = []
    for i in range(segments):
        for j in range(sides):
            a, b = i * sides + j, i * sides + (j + 1) % sides
            c, d = a + sides, b + sides
            faces += [(a, c, d), (a, d, b)]
    return Mesh(np.array(vertices), np.array(faces))


def rotation_about(axis: str, degrees: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()


def write_ply(mesh: Mesh, path, scale: float = 1.0) -> None:
    """ASCII PLY (what BOP's models folder holds); `scale` converts units (e.g. 1000 for millimetres)."""
    lines = ["ply", "format ascii 1.0", f"element vertex {len(mesh.vertices)}", "property float x",
             "property float y", "property float z", f"element face {len(mesh.faces)}",
             "property list uchar int vertex_indices", "end_header"]
    lines += [f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices * scale]
    lines += [f"3 {a} {b} {c}" for a, b, c in mesh.faces]
    write_text_atomic(Path(path), "\n".join(lines) + "\n")
