//! The one table of the admin API's routes. The same table builds the axum router, the list
//! [`ROUTES`] and the OpenAPI document's paths, so none can drift from the others (a unit test
//! checks the document against [`ROUTES`] both ways).

use std::sync::OnceLock;

use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

use super::{devices, import, ops, registrations, users, users_batch, AdminState};

macro_rules! route_table {
    ($( $method:ident $path:literal => $module:ident :: $handler:ident ),* $(,)?) => {
        /// Every route of the admin API: (method, path).
        pub const ROUTES: &[(&str, &str)] = &[ $( (stringify!($method), $path) ),* ];

        fn add_routes(router: Router<AdminState>) -> Router<AdminState> {
            router $( .route($path, axum::routing::$method($module::$handler)) )*
        }

        #[derive(OpenApi)]
        #[openapi(
            info(title = "deskline admin API", description = "Users, devices, registrations and events of a deskline server."),
            paths( $( $module::$handler ),* ),
            modifiers(&BearerAuth),
        )]
        struct ApiDoc;
    };
}

route_table! {
    get "/" => ops::dashboard,
    get "/healthz" => ops::healthz,
    get "/metrics" => ops::metrics,
    get "/api/v1/openapi.json" => ops::openapi,
    post "/api/v1/login" => users::login,
    get "/api/v1/whoami" => ops::whoami,
    post "/api/v1/users" => users::create,
    post "/api/v1/users/deactivate" => users_batch::deactivate_many,
    post "/api/v1/users/reactivate" => users_batch::reactivate_many,
    get "/api/v1/users" => users::list,
    get "/api/v1/users/{username}" => users::show,
    delete "/api/v1/users/{username}" => users::delete,
    post "/api/v1/users/{username}/password" => users::set_password,
    post "/api/v1/users/{username}/deactivate" => users::deactivate,
    post "/api/v1/users/{username}/reactivate" => users::reactivate,
    post "/api/v1/users/{username}/sign-out" => users::sign_out,
    post "/api/v1/import" => import::import,
    post "/api/v1/devices" => devices::create,
    get "/api/v1/devices" => devices::list,
    get "/api/v1/devices/{mac}" => devices::show,
    delete "/api/v1/devices/{mac}" => devices::delete,
    get "/api/v1/devices/{mac}/sip-credentials" => devices::sip_credentials,
    put "/api/v1/devices/{mac}/user" => devices::assign,
    post "/api/v1/devices/{mac}/rotate-credentials" => devices::rotate,
    post "/api/v1/devices/{mac}/resync" => devices::resync,
    get "/api/v1/registrations" => registrations::list,
    get "/api/v1/stats" => registrations::stats,
    get "/api/v1/events" => ops::events,
    get "/api/v1/audit" => ops::audit,
    get "/api/v1/tokens" => ops::list_tokens,
    post "/api/v1/tokens" => ops::create_token,
    delete "/api/v1/tokens/{name}" => ops::delete_token,
}

/// Declares the bearer token scheme the operations refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The OpenAPI document (built once).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi).clone()
}

/// The router of every route, with JSON answers for unknown paths and methods.
pub fn build(state: AdminState) -> Router {
    add_routes(Router::new())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_operation(item: &utoipa::openapi::PathItem, method: &str) -> bool {
        match method {
            "get" => item.get.is_some(),
            "post" => item.post.is_some(),
            "put" => item.put.is_some(),
            "delete" => item.delete.is_some(),
            "patch" => item.patch.is_some(),
            _ => false,
        }
    }

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc = openapi_document();
        for (method, path) in ROUTES {
            let item = doc.paths.paths.get(*path).unwrap_or_else(|| panic!("{path} missing from the document"));
            assert!(has_operation(item, method), "{method} {path} missing from the document");
        }
    }

    #[test]
    fn the_document_has_no_route_the_router_lacks() {
        let doc = openapi_document();
        for (path, item) in &doc.paths.paths {
            for method in ["get", "post", "put", "delete", "patch"] {
                if has_operation(item, method) {
                    assert!(ROUTES.contains(&(method, path.as_str())), "{method} {path} documented but not routed");
                }
            }
        }
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
        assert!(json["components"]["schemas"]["UserView"].is_object());
    }

    #[test]
    fn no_route_is_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert(r), "{r:?} twice");
        }
    }
}
