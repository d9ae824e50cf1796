//! The JSON API under `/api/v1/`: one file per area (attempts,
//! escalations, holds, accounts, QA labels, statistics, access). Every
//! route is registered through `utoipa_axum::routes!`, so the OpenAPI
//! document and the router are made from the same annotations and cannot
//! drift apart. Every route sits behind `auth::require_auth`; each handler
//! names the role it needs in its `Authed<_>` argument.

pub mod accounts;
pub mod admin;
pub mod attempts;
pub mod campaigns;
pub mod escalations;
pub mod holds;
pub mod imports;
pub mod labels;
pub mod stats;
pub mod views;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;

/// The document's frame: title, security schemes, tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "duecall",
        description = "The service of the duecall reminder agent: calls, escalations, holds, QA labels, statistics. \
Authenticate with `Authorization: Bearer <token>` (`duecall token create`) or the console's session cookie \
(changes then need the session's `X-CSRF-Token`). Anonymous requests get 401, a role that may not get 403. \
Errors are `{\"error\": ..., \"field\": ...}`."
    ),
    modifiers(&Security),
    tags(
        (name = "attempts", description = "Calls: outcome, transcript, recording"),
        (name = "escalations", description = "The collectors' queue"),
        (name = "holds", description = "Pauses, holds, suppressions, callbacks"),
        (name = "accounts", description = "Debts and their state"),
        (name = "qa", description = "QA labels and their export"),
        (name = "stats", description = "Campaign statistics"),
        (name = "campaigns", description = "Campaigns: accounts, start, pause, stop"),
        (name = "imports", description = "The lender's do-not-call list and payments"),
        (name = "access", description = "Who am I, users, tokens, audit log"),
        (name = "service", description = "Health, metrics, this document")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `duecall token create`"))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "The console's session (log in at /login)",
            ))),
        );
    }
}

/// Every `/api/v1` route, with its part of the OpenAPI document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(attempts::list))
        .routes(routes!(attempts::detail))
        .routes(routes!(attempts::recording))
        .routes(routes!(labels::add))
        .routes(routes!(labels::export))
        .routes(routes!(escalations::list))
        .routes(routes!(escalations::detail))
        .routes(routes!(escalations::claim))
        .routes(routes!(escalations::unclaim))
        .routes(routes!(escalations::add_note))
        .routes(routes!(escalations::close))
        .routes(routes!(holds::pauses))
        .routes(routes!(holds::release))
        .routes(routes!(holds::extend))
        .routes(routes!(holds::suppressions))
        .routes(routes!(holds::callbacks))
        .routes(routes!(accounts::list))
        .routes(routes!(accounts::detail))
        .routes(routes!(stats::stats))
        .routes(routes!(admin::me))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::users, admin::add_user))
        .routes(routes!(admin::tokens, admin::create_token))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(campaigns::list, campaigns::create))
        .routes(routes!(campaigns::detail))
        .routes(routes!(campaigns::start))
        .routes(routes!(campaigns::pause))
        .routes(routes!(campaigns::stop))
        .merge(
            // CSV uploads are larger than any JSON body; the inner limit wins.
            OpenApiRouter::new()
                .routes(routes!(campaigns::upload))
                .routes(routes!(imports::do_not_call))
                .routes(routes!(imports::payments))
                .layer(axum::extract::DefaultBodyLimit::max(campaigns::CSV_LIMIT)),
        )
}
