"""Django admin for patients: deliberately empty.

ARCHITECTURE.md: admin is for reference data only. Patient records must be read through
``selectors.access_patient`` (organisation scope, audited view, masked lists); the Django admin
would bypass all three and show decrypted identifiers, so no patient table is registered here.
"""
