// The OpenAPI 3.0 document of API v1, generated from the route table the server dispatches from
// (web/api/api.cpp), so the description and the server cannot drift. Portable.
//
// Paths, operations, path parameters (from the pattern's {vm}/{vcpu}), query parameters, request
// bodies and responses come from the table; the response schemas are declared here once, by the
// names the table uses (components/schemas). Host tests check that every route is described,
// every described path routes, and that handler output matches its schema.
#pragma once

#include <span>
#include <string_view>

#include "web/api/json_shape.h"
#include "web/api/router.h"

namespace lantern::web::api {

inline constexpr std::string_view kOpenApiVersion = "3.0.3";

Json openapi_document(std::span<const Route> routes);

// The components/schemas object (every schema a route may name).
Json openapi_schemas();

}  // namespace lantern::web::api
