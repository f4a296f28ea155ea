"""The web client page: a SIP user agent in the browser, for the logged-in Django user.

The page holds no SIP password. It signs in with the Django account, then asks
`POST /api/sip-credentials/` for short-lived digest credentials and speaks SIP over
WebSocket (SIP.js), XCAP and nothing else: what a third-party web app could do.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from sipws.models import SipAccount

# Built by `npm ci` in frontend/ (postinstall runs esbuild); absent in a fresh clone.
SIPJS_BUNDLE = Path(__file__).resolve().parent / "static" / "frontend" / "vendor" / "sip.js"


class Login(auth_views.LoginView):
    template_name = "frontend/login.html"
    redirect_authenticated_user = True
    next_page = "frontend:app"


class Logout(auth_views.LogoutView):
    next_page = "frontend:login"


@login_required(login_url="frontend:login")
@ensure_csrf_cookie
def app(request):
    account = SipAccount.objects.filter(user=request.user).first()
    context = {
        "account": account,
        "bundle_missing": not SIPJS_BUNDLE.is_file(),
    }
    return render(request, "frontend/app.html", context)
