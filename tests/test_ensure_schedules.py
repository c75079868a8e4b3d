"""`manage.py ensure_schedules` puts the recurring schedules in place, once."""

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from core.schedules import SCHEDULES, ensure_schedules


def test_the_command_creates_every_recurring_schedule(db):
    out = StringIO()
    call_command("ensure_schedules", stdout=out)
    names = set(Schedule.objects.values_list("name", flat=True))
    assert names == {spec.name for spec in SCHEDULES}
    archival = Schedule.objects.get(func="batches.tasks.cleanup_completed_batches")
    assert archival.schedule_type == Schedule.DAILY
    assert archival.repeats == -1
    assert (archival.next_run.hour, archival.next_run.minute) == (3, 0)
    scan = Schedule.objects.get(func="notifications.tasks.scan_active_batches")
    assert (scan.schedule_type, scan.minutes) == (Schedule.MINUTES, 1)
    assert "created" in out.getvalue()


def test_running_it_again_adds_nothing_and_keeps_the_next_run(db):
    ensure_schedules()
    archival = Schedule.objects.get(name="Archive finished batches")
    later = timezone.now() + timedelta(hours=5)
    Schedule.objects.filter(pk=archival.pk).update(next_run=later)
    assert all(outcome == "updated" for _, outcome in ensure_schedules())
    assert Schedule.objects.count() == len(SCHEDULES)
    assert Schedule.objects.get(pk=archival.pk).next_run == later


def test_duplicates_left_by_an_earlier_race_are_removed(db):
    ensure_schedules()
    Schedule.objects.create(
        name="Cluster heartbeat", func="health.tasks.heartbeat", schedule_type="I", minutes=1
    )
    ensure_schedules()
    assert Schedule.objects.filter(name="Cluster heartbeat").count() == 1


def test_a_changed_definition_is_brought_back_in_line(db):
    ensure_schedules()
    Schedule.objects.filter(name="Notify: scan active batches").update(minutes=30, repeats=0)
    ensure_schedules()
    scan = Schedule.objects.get(name="Notify: scan active batches")
    assert (scan.minutes, scan.repeats) == (1, -1)
