"""Staff page: identify a patient by scanning their e-health card QR (扫码识别; access.md HC-1).

A USB/Bluetooth scanner types the code into the focused field and presses Enter; a phone or a
tablet can use its camera instead (``BarcodeDetector`` when the browser has it, else the jsQR
decoder served from ``/static/vendor/jsQR.js``). Only a signed, unexpired, unused token opens the
record (``patients.card.verify_token``); a card number typed by hand does not.
"""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from yilian.common import audit, policy
from yilian.common.access import requires
from yilian.common.errors import DomainError
from yilian.patients import card as health_card
from yilian.patients import views as patient_views

TOKEN_FIELD_MAX = health_card.MAX_TOKEN_LENGTH


@require_http_methods(["GET", "POST"])
@requires(policy.CARD_SCAN)
def scan_page(request):
    error = None
    status = 200
    if request.method == "POST":
        token = request.POST.get("token", "")[: TOKEN_FIELD_MAX + 1]
        try:
            patient = health_card.verify_token(token, actor=request.actor)
        except DomainError as exc:
            # The refusal is shown inline (the desk scans the next code at once), and audited (L-1).
            audit.refused(request.actor, "card.scan", code=exc.code)
            error = exc
            status = exc.status
        else:
            # The patient is at this desk: let this session open the record although it may be
            # outside the desk's organisation scope (each page is still audited).
            patient_views.remember_presented(request, patient.pk)
            return redirect(reverse("patients:detail", args=[patient.pk]))
    return render(
        request,
        "patients/card/scan.html",
        {"error": error, "token_max": TOKEN_FIELD_MAX},
        status=status,
    )
