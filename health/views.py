from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from health.checks import check_broker, check_cluster, check_database


@never_cache
@require_GET
def healthz(request) -> JsonResponse:
    """200 when the database, the broker and a recent cluster are all there, 503 otherwise."""
    checks = {"database": check_database(), "broker": check_broker(), "cluster": check_cluster()}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )
