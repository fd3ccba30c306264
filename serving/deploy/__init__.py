"""Running Fovea on a cluster: Ray Serve (``ray_app``, optional extra ``ray``) and KServe (YAML).

Nothing here is imported by ``fovea serve``; only the Ray modules import ray.
"""
