"""Everything that touches Blender's Python module (bpy) lives in this package.

Importing the package itself is free; bpy is imported by the modules that need it, through `_bpy`,
which turns a missing Blender into an ImportError that says how to install it.
"""
