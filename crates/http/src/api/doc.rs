//! The OpenAPI 3 document of the routes (`GET /v1/openapi.json`),
//! generated from the handlers' annotations and the views' own schemas:
//! the body a route answers is described by the type its use case returns.

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

/// The error body of every refusal.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// One line: what is wrong, naming the field for bad input.
    error: String,
}

/// The refusals every route may answer (SPEC §12), each with `ErrorBody`.
pub(crate) struct Refusals;

impl utoipa::IntoResponses for Refusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            ("400", "bad input: the one line names the field"),
            ("401", "no token, or an unknown one"),
            ("403", "the token's role may not do this"),
            (
                "404",
                "nothing of that name (a date, a txn_id or rrn, a batch)",
            ),
            ("408", "the request took longer than the service allows"),
            ("409", "a conflict: e.g. approving one's own batch"),
            ("413", "the body is over the limit"),
            ("429", "the token is over its rate; try again in a minute"),
            ("503", "the log (the broker) cannot be reached"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let r = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorBody",
                        ))))
                        .build(),
                )
                .build();
            (status.to_string(), RefOr::T(r))
        })
        .collect()
    }
}

/// `POST /v1/fees`: the texts `fees load` reads from its files.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct FeesBody {
    /// The fee schedule, TOML (SPEC §4).
    fees: String,
    /// The holiday calendar, as `--holidays` reads it.
    holidays: Option<String>,
}

/// `POST /v1/registry`: the texts `registry load` reads from its files.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RegistryBody {
    /// Merchants, one JSON object per line (SPEC §3).
    merchants: String,
    /// Intermediaries, one JSON object per line.
    intermediaries: Option<String>,
}

/// `POST /v1/recon/{date}/resolve`: which break, and the decision (§14).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ResolveBody {
    terminal_id: String,
    rrn: String,
    #[schema(value_type = String, pattern = "^(sale|refund)$")]
    txn_type: String,
    #[schema(value_type = String, pattern = "^(ledger|channel)$")]
    decision: String,
    remark: String,
}

/// The bank's CSV of `payout export`.
pub(crate) struct BankCsv;

impl PartialSchema for BankCsv {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        String::schema()
    }
}

impl ToSchema for BankCsv {}

/// The document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "clearing ledger", description = "The operators' service of SPEC §12"),
    paths(
        super::reads::settlement,
        super::reads::risk,
        super::reads::txn,
        super::reads::statement,
        super::reads::digest,
        super::reads::recon_latest,
        super::reads::adjustments,
        super::reads::payout,
        super::reads::metrics_text,
        super::writes::transactions,
        super::writes::recon,
        super::writes::fees,
        super::writes::registry,
        super::writes::resolve,
        super::writes::payout_prepare,
        super::writes::payout_approve,
        super::writes::payout_export,
        super::writes::payout_result,
    ),
    components(schemas(ErrorBody, clearing_app::Layout)),
    modifiers(&Bearer)
)]
pub(crate) struct ApiDoc;

/// `Authorization: Bearer TOKEN` on every route that takes a token.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
