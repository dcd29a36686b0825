"""Chronic-disease management (慢病管理) for the six diseases: ../shared/docs/rules/chronic.md."""
