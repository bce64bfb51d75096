"""Training the ``dit`` engine's VAE and transformer (``shotfill train``), and exporting a checkpoint."""
