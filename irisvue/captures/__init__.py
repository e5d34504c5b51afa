from flask.sansio.blueprints import BlueprintSetupState
from flask_smorest import Blueprint

blp = Blueprint(
    "captures",
    __name__,
    url_prefix="/api/v1/captures",
    description="Iris photographs: consent-gated, metadata-stripped, encrypted uploads.",
)


@blp.record_once
def _init_keyring(state: BlueprintSetupState) -> None:
    # A bad MASTER_KEYS entry stops the app at start-up, not at the first upload.
    from irisvue.captures.keys import init_keyring

    init_keyring(state.app)


from irisvue.captures import routes  # noqa: E402,F401
