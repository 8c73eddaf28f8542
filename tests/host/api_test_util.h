// Helpers for the API host tests: building requests, reading (streamed) bodies, and a small
// validator for the subset of OpenAPI 3.0 schema the API's document uses.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "web/http/message.h"

namespace lantern::web::api::testing {

inline http::Request make_request(http::Method method, std::string target, std::string body = "",
                                  std::vector<http::Header> headers = {}) {
  http::Request r;
  r.method = method;
  r.method_text = std::string(http::method_name(method));
  r.target = target;
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}
inline http::Request get(std::string target) {
  return make_request(http::Method::kGet, std::move(target));
}
inline http::Request post_json(std::string target, std::string body) {
  return make_request(http::Method::kPost, std::move(target), std::move(body),
                      {{"content-type", "application/json"}});
}

// The whole body: the string, or every piece of the stream (with `max_bytes` per piece).
inline std::string full_body(http::Response& r, size_t max_bytes = 1024, size_t* pieces = nullptr) {
  if (!r.stream) return r.body;
  std::string out;
  size_t n = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    std::string piece;
    if (!r.stream->next(piece, max_bytes)) {
      EXPECT_TRUE(piece.empty()) << "a source that ended appended bytes";
      break;
    }
    EXPECT_FALSE(piece.empty()) << "a source that has not ended appended nothing";
    out += piece;
    ++n;
  }
  if (pieces) *pieces = n;
  return out;
}

inline nlohmann::json body_json(http::Response& r) {
  const std::string text = full_body(r);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "body is not JSON: " << text;
  return j;
}

inline std::string header_value(const http::Response& r, std::string_view name) {
  for (const http::Header& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "";
}

// Checks `value` against an OpenAPI 3.0 schema (type, nullable, enum, oneOf, pattern, minimum, maximum,
// required, properties, additionalProperties: false, items, $ref into components/schemas).
// Appends one line per violation to `errors`.
inline void validate_schema(const nlohmann::json& value, const nlohmann::json& schema,
                            const nlohmann::json& components, const std::string& where,
                            std::vector<std::string>& errors) {
  if (schema.contains("$ref")) {
    const std::string ref = schema["$ref"].get<std::string>();
    const std::string prefix = "#/components/schemas/";
    if (ref.rfind(prefix, 0) != 0 || !components.contains(ref.substr(prefix.size()))) {
      errors.push_back(where + ": unresolved $ref " + ref);
      return;
    }
    validate_schema(value, components[ref.substr(prefix.size())], components, where, errors);
    return;
  }
  if (value.is_null()) {
    if (!schema.value("nullable", false)) errors.push_back(where + ": null but not nullable");
    return;
  }
  if (schema.contains("oneOf")) {
    size_t matches = 0;
    for (const auto& alternative : schema["oneOf"]) {
      std::vector<std::string> alternative_errors;
      validate_schema(value, alternative, components, where, alternative_errors);
      if (alternative_errors.empty()) ++matches;
    }
    if (matches != 1) errors.push_back(where + ": matches " + std::to_string(matches) + " of oneOf's schemas");
    return;
  }
  const std::string type = schema.value("type", "");
  if (type == "object") {
    if (!value.is_object()) return errors.push_back(where + ": not an object");
    if (schema.contains("required")) {
      for (const auto& name : schema["required"]) {
        if (!value.contains(name.get<std::string>()))
          errors.push_back(where + ": missing " + name.get<std::string>());
      }
    }
    const nlohmann::json props = schema.value("properties", nlohmann::json::object());
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (props.contains(it.key())) {
        validate_schema(it.value(), props[it.key()], components, where + "." + it.key(), errors);
      } else if (schema.contains("additionalProperties") && schema["additionalProperties"] == false) {
        errors.push_back(where + ": undocumented member " + it.key());
      }
    }
  } else if (type == "array") {
    if (!value.is_array()) return errors.push_back(where + ": not an array");
    for (size_t i = 0; i < value.size(); ++i) {
      validate_schema(value[i], schema["items"], components, where + "[" + std::to_string(i) + "]", errors);
    }
  } else if (type == "string") {
    if (!value.is_string()) return errors.push_back(where + ": not a string");
    const std::string s = value.get<std::string>();
    if (schema.contains("enum")) {
      bool found = false;
      for (const auto& e : schema["enum"]) found |= e == s;
      if (!found) errors.push_back(where + ": \"" + s + "\" not in enum");
    }
    if (schema.contains("pattern") &&
        !std::regex_search(s, std::regex(schema["pattern"].get<std::string>()))) {
      errors.push_back(where + ": \"" + s + "\" does not match " + schema["pattern"].get<std::string>());
    }
  } else if (type == "integer") {
    if (!value.is_number_integer()) return errors.push_back(where + ": not an integer");
    if (schema.contains("enum")) {
      bool found = false;
      for (const auto& e : schema["enum"]) found |= e == value;
      if (!found) errors.push_back(where + ": " + value.dump() + " not in enum");
    }
    if (schema.contains("minimum") && value.is_number_integer() && !value.is_number_unsigned() &&
        value.get<int64_t>() < schema["minimum"].get<int64_t>()) {
      errors.push_back(where + ": below minimum");
    }
    if (schema.contains("maximum") && value.get<uint64_t>() > schema["maximum"].get<uint64_t>()) {
      errors.push_back(where + ": above maximum");
    }
  } else if (type == "boolean") {
    if (!value.is_boolean()) errors.push_back(where + ": not a boolean");
  } else if (type.empty()) {
    errors.push_back(where + ": schema without type or $ref");
  }
}

}  // namespace lantern::web::api::testing
