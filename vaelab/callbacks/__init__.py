"""Lightning callbacks, one module each: checkpoints' random state, interruption, non-finite steps,
cost, wall clock, figures, gradient diagnostics and the progress bar."""
