"""The per-registry, per-year roll-up (``RegistryYear``) that the national indicators read: chronic.md §6.

One row per (registry, assessment year) carries what IND-1..IND-4 need so that a county-wide
indicator set aggregates one row per registry instead of two million follow-ups:

- ``ff_dates``: distinct dates of face-to-face (clinic/home) follow-ups in
  ``[max(Jan 1, registered_on), Dec 31]`` (R2.2: phone does not count; R2.3: same day counts once);
- ``ff_quarters``: bit ``q-1`` set when quarter ``q`` holds one of those dates (IND-1 with
  ``require_quarterly_distribution``);
- ``last_bp_on`` / ``last_bp_at_target``: the last face-to-face visit in that window with a BP and
  whether it met R4.1 at that visit's age (stored per follow-up as ``bp_at_target``); IND-2;
- ``last_fpg_on`` / ``last_fpg_at_target``: the same for FPG (R4.2); IND-4;
- ``referrals``: referrals of the registry opened in the year (R7.2).

Among several measured visits on the last day, the one recorded last (highest id) wins.
A registry with no face-to-face visit and no referral in a year has no row: readers treat a
missing row as zero visits and no reading (失访 counts against control, IND-2/IND-4).

``refresh_registry_year`` is called by the follow-up service after every follow-up write, in the
same transaction; ``rebuild_all`` recomputes everything with set-based SQL (imports, demo, bench).
"""

from __future__ import annotations

from datetime import date

from django.db import connection, transaction

from yilian.chronic.models import FollowUp, Referral, Registry, RegistryYear

FACE_TO_FACE_MODES = ("clinic", "home")


def _window(registry: Registry, year: int) -> tuple[date, date]:
    """R2.3 / §6 FF(r): ``[max(P.start, registered_on), P.end]`` for the calendar year."""
    return max(date(year, 1, 1), registry.registered_on), date(year, 12, 31)


def refresh_registry_year(*, registry: Registry, year: int) -> RegistryYear:
    """Recompute the ``RegistryYear`` row of ``(registry, year)`` from its FollowUp rows (§6, R2.3).

    No audit row: this is derived data, written inside the caller's transaction.
    """
    start, end = _window(registry, year)
    visits = FollowUp.objects.filter(
        registry_id=registry.pk, mode__in=FACE_TO_FACE_MODES, visit_on__gte=start, visit_on__lte=end
    )
    days = set(visits.values_list("visit_on", flat=True).distinct()) if start <= end else set()
    quarters = 0
    for day in days:
        quarters |= 1 << ((day.month - 1) // 3)
    last_bp = (
        visits.filter(bp_at_target__isnull=False)
        .order_by("-visit_on", "-id")
        .values("visit_on", "bp_at_target")
        .first()
        if days
        else None
    )
    last_fpg = (
        visits.filter(fpg_at_target__isnull=False)
        .order_by("-visit_on", "-id")
        .values("visit_on", "fpg_at_target")
        .first()
        if days
        else None
    )
    referrals = Referral.objects.filter(
        registry_id=registry.pk, opened_on__gte=date(year, 1, 1), opened_on__lte=date(year, 12, 31)
    ).count()
    values = {
        "ff_dates": len(days),
        "ff_quarters": quarters,
        "last_bp_on": last_bp["visit_on"] if last_bp else None,
        "last_bp_at_target": last_bp["bp_at_target"] if last_bp else None,
        "last_fpg_on": last_fpg["visit_on"] if last_fpg else None,
        "last_fpg_at_target": last_fpg["fpg_at_target"] if last_fpg else None,
        "referrals": referrals,
    }
    with transaction.atomic():
        updated = RegistryYear.objects.filter(registry_id=registry.pk, year=year).update(**values)
        if updated:
            return RegistryYear.objects.get(registry_id=registry.pk, year=year)
        return RegistryYear.objects.create(registry_id=registry.pk, year=year, **values)


def _year_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(YEAR FROM {column}) AS INTEGER)"
    return f"CAST(strftime('%%Y', {column}) AS INTEGER)"


def _month_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(MONTH FROM {column}) AS INTEGER)"
    return f"CAST(strftime('%%m', {column}) AS INTEGER)"


@transaction.atomic
def rebuild_all(*, year: int | None = None) -> int:
    """Recompute every ``RegistryYear`` row (of ``year``, or of all years) in set-based SQL (§6, R2.3).

    Portable SQL (SQLite and PostgreSQL; only the year/month extraction differs): one
    ``INSERT … SELECT … GROUP BY`` for the face-to-face aggregates, one insert for (registry, year)
    pairs that only have referrals, then correlated ``UPDATE``s for the at-target flags of the last
    measured visit and for the referral count. Returns the number of rows written.
    """
    ry = RegistryYear._meta.db_table
    fu = FollowUp._meta.db_table
    reg = Registry._meta.db_table
    rf = Referral._meta.db_table
    f_year, f_month = _year_sql("f.visit_on"), _month_sql("f.visit_on")
    r_year = _year_sql("x.opened_on")
    year_filter_f = ""
    year_filter_r = ""
    params: list = []
    with connection.cursor() as cur:
        if year is None:
            cur.execute(f"DELETE FROM {ry}")  # noqa: S608
        else:
            cur.execute(f"DELETE FROM {ry} WHERE year = %s", [year])  # noqa: S608
            year_filter_f = "AND f.visit_on >= %s AND f.visit_on <= %s"
            year_filter_r = "AND x.opened_on >= %s AND x.opened_on <= %s"
            params = [date(year, 1, 1), date(year, 12, 31)]
        quarter_bits = " + ".join(
            f"MAX(CASE WHEN {f_month} BETWEEN {3 * q + 1} AND {3 * q + 3} THEN {1 << q} ELSE 0 END)"
            for q in range(4)
        )
        cur.execute(
            f"""
            INSERT INTO {ry} (registry_id, year, ff_dates, ff_quarters, last_bp_on, last_bp_at_target,
                              last_fpg_on, last_fpg_at_target, referrals)
            SELECT f.registry_id, {f_year}, COUNT(DISTINCT f.visit_on), {quarter_bits},
                   MAX(CASE WHEN f.bp_at_target IS NOT NULL THEN f.visit_on END), NULL,
                   MAX(CASE WHEN f.fpg_at_target IS NOT NULL THEN f.visit_on END), NULL, 0
            FROM {fu} f JOIN {reg} r ON r.id = f.registry_id
            WHERE f.mode IN ('clinic', 'home') AND f.visit_on >= r.registered_on {year_filter_f}
            GROUP BY f.registry_id, {f_year}
            """,  # noqa: S608
            params,
        )
        cur.execute(
            f"""
            INSERT INTO {ry} (registry_id, year, ff_dates, ff_quarters, last_bp_on, last_bp_at_target,
                              last_fpg_on, last_fpg_at_target, referrals)
            SELECT DISTINCT x.registry_id, {r_year}, 0, 0, CAST(NULL AS DATE), CAST(NULL AS BOOLEAN),
                   CAST(NULL AS DATE), CAST(NULL AS BOOLEAN), 0
            FROM {rf} x
            WHERE x.registry_id IS NOT NULL {year_filter_r}
              AND NOT EXISTS (SELECT 1 FROM {ry} y WHERE y.registry_id = x.registry_id AND y.year = {r_year})
            """,  # noqa: S608
            params,
        )
        only_year = "" if year is None else "WHERE year = %s"
        only_params = [] if year is None else [year]
        for flag, day in (("bp_at_target", "last_bp_on"), ("fpg_at_target", "last_fpg_on")):
            cur.execute(
                f"""
                UPDATE {ry} SET last_{flag} = (
                    SELECT f.{flag} FROM {fu} f
                    WHERE f.registry_id = {ry}.registry_id AND f.visit_on = {ry}.{day}
                      AND f.mode IN ('clinic', 'home') AND f.{flag} IS NOT NULL
                    ORDER BY f.id DESC LIMIT 1)
                WHERE {day} IS NOT NULL {"AND year = %s" if year is not None else ""}
                """,  # noqa: S608
                only_params,
            )
        x_year = _year_sql("x.opened_on")
        cur.execute(
            f"""
            UPDATE {ry} SET referrals = (
                SELECT COUNT(*) FROM {rf} x WHERE x.registry_id = {ry}.registry_id AND {x_year} = {ry}.year)
            WHERE EXISTS (SELECT 1 FROM {rf} x WHERE x.registry_id = {ry}.registry_id AND {x_year} = {ry}.year)
            {"" if year is None else "AND year = %s"}
            """,  # noqa: S608
            only_params,
        )
        cur.execute(f"SELECT COUNT(*) FROM {ry} {only_year}", only_params)  # noqa: S608
        return cur.fetchone()[0]
