"""A stand-in for SGLang in the engine simulator image (images/engine-sim)."""
