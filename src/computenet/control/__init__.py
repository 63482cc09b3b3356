"""Control plane: the job lifecycle table and the live scheduling loop."""
