"""Flask extensions, created once here and bound to an app in `create_app` with `init_app`.

Flask-Admin, flask-smorest's `Api` and the rate limiter keep per-app state, so `create_app` builds
those per app (tests create several apps in one process).
"""

from flask_jwt_extended import JWTManager

jwt = JWTManager()
