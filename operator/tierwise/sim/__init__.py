"""An engine simulator and traffic generator for exercising Tierwise without GPUs.

The simulator speaks the OpenAI API and exposes the metric names of real vLLM and SGLang,
with a latency model (uncached prefill, batched decode, bounded queue, prefix cache with
LRU eviction) so routing, autoscaling and the demo can be tested at scale on any machine.
It is a test instrument, never a substitute where an issue asks for a real engine.

Pure, importable pieces (no HTTP): ``tokens``, ``prefix_cache``, ``latency``, ``replay``,
``traffic``. The server is ``app`` (``create_app``, ``serve_engine``); ``process`` starts
it as a subprocess; ``driver`` sends traffic; ``cli`` wires ``tierwise sim``.
"""
