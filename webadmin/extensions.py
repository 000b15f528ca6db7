"""Flask extensions, created once here and bound to an app in `create_app` with `init_app`."""

from flask_jwt_extended import JWTManager
from flask_mail import Mail

jwt = JWTManager()
mail = Mail()
