"""factdyn inside other trainers' loops: :mod:`.core` is the loop-agnostic
:class:`~factdyn.integrations.core.Session`; :mod:`.hf` attaches it to a Hugging Face
``Trainer``, :mod:`.olmo_core` to OLMo-core's. Each writes a standard run directory."""
