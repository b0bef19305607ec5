"""Portal routes."""

from flask import Blueprint, render_template

bp = Blueprint("portal", __name__)


@bp.route("/")
def home():
    return render_template("portal/home.html")
