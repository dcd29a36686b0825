from django.conf import settings

from yilian import __version__


def product(request):
    return {"YILIAN_VERSION": __version__, "CARD_REFRESH_SECONDS": settings.CARD_TOKEN_REFRESH_SECONDS}
