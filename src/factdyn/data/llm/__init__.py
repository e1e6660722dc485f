"""Knowledge items written by a language model behind any OpenAI-compatible chat endpoint.

``client`` asks the endpoint (bounded retries, a content-keyed disk cache of every request and
reply, every reply validated), ``net`` is the hostile-network side (a total deadline per
request, URLs without credentials, strings escaped before they are printed), ``prompts`` says
what is asked and what shape a reply must have, ``rules`` is the filter's rule checks,
``generate`` puts an item together and writes ``knowledge.json`` and ``generation.json``.
"""
