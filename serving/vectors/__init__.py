"""Vectors on disk and their search: one implementation for the face gallery and image collections.

``store`` keeps crash-safe generations of (ids, vectors, metadata) in a directory that several
processes may share; ``index`` searches them exactly or approximately; ``collection`` joins the
two and keeps the index in step with the newest generation.
"""
