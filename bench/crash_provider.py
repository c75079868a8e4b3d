"""A provider for bench/faults.py: the openai provider, except that a marked document kills its worker.

Registered by the benchmark's cluster through EXTRA_PROVIDERS
({"crashy": "bench.crash_provider.CrashProvider"}). The worker process dies at
once (os._exit), as one would on a document that crashes a native parser: no
exception is raised, nothing is recorded, no lease is given back.
"""

import os

from grading.providers.openai import OpenAIProvider

MARKER = "CRASH-THIS-WORKER"


class CrashProvider(OpenAIProvider):
    name = "crashy"

    def grade(self, request):
        if MARKER in request.text:
            os._exit(70)
        return super().grade(request)
