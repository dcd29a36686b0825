"""The staff navigation shows each role only what the policy lets it open."""

import pytest
from django.urls import reverse

from yilian.common import policy

pytestmark = pytest.mark.django_db


def nav_links(client):
    html = client.get(reverse("community:org-tree")).content.decode()
    nav = html[html.index('class="mainnav"') : html.index("</nav>")]
    return nav


def test_auditor_sees_the_audit_log_but_no_patients(login, staff_of):
    nav = nav_links(login(staff_of(policy.AUDITOR)))
    assert reverse("common:audit-log") in nav
    assert reverse("patients:staff-home") not in nav
    assert reverse("accounts:security") not in nav


def test_doctor_sees_patients_and_calling_but_not_audit(login, staff_of):
    nav = nav_links(login(staff_of(policy.DOCTOR)))
    assert reverse("patients:staff-home") in nav and reverse("queueing:doctor") in nav
    assert reverse("common:audit-log") not in nav and reverse("queueing:desk") not in nav


def test_security_administrator_sees_security(login, staff_of):
    nav = nav_links(login(staff_of(policy.SECADMIN)))
    assert reverse("accounts:security") in nav
    assert reverse("patients:staff-home") not in nav


def test_coordinator_sees_the_schedule_but_not_the_triage_desk(login, staff_of):
    nav = nav_links(login(staff_of(policy.COORDINATOR)))
    assert reverse("scheduling:sessions") in nav
    assert reverse("queueing:desk") not in nav


def test_patient_phone_pages_offer_the_language_switch(client):
    from tests import factories as f

    account = f.make_patient_account("13800001111")
    client.force_login(account.user)
    html = client.get(reverse("h5:home")).content.decode()
    assert 'action="/i18n/setlang/"' in html and 'value="en"' in html


def test_staff_navigation_reads_patients_in_english(login, staff_of):
    client = login(staff_of(policy.DOCTOR))
    client.cookies["django_language"] = "en"
    html = client.get(reverse("community:org-tree")).content.decode()
    nav = html[html.index('class="mainnav"') : html.index("</nav>")]
    assert ">Patients</a>" in nav


def test_village_doctor_sees_the_chronic_work_list_screening_and_indicators(login, staff_of, community):
    nav = nav_links(login(staff_of(policy.VILLAGE_DOCTOR, community.village)))
    assert reverse("chronic:worklist") in nav and reverse("chronic:screening") in nav
    assert reverse("chronic:indicators-dashboard") in nav
    assert reverse("chronic:import") not in nav


def test_coordinator_sees_chronic_indicators_and_import_but_not_the_work_list(login, staff_of):
    nav = nav_links(login(staff_of(policy.COORDINATOR)))
    assert reverse("chronic:indicators-dashboard") in nav and reverse("chronic:import") in nav
    assert reverse("chronic:worklist") not in nav
