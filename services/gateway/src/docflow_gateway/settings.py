"""Gateway configuration (``DOCFLOW_*`` environment variables)."""

from pydantic import AnyHttpUrl, Field

from docflow_shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """What the upload API needs to know."""

    port: int = Field(default=8000, ge=0, le=65535)
    # Where clients reach the status service; status links are built on it.
    status_public_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8001")
    # Authentication comes with tenants (issue 3); until then every document
    # belongs to this tenant.
    default_tenant: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]{1,64}$")
