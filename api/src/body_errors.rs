//! Which fields of a request body are wrong. The framework refuses a body that does not fit
//! its operation's schema as a whole ("Expected input type "string", found null"), naming no
//! field; an integrator needs each field. For a body refused that way, [`describe`] holds the
//! body against the operation's schema from the OpenAPI document (required fields, known
//! fields of a closed object, each field's JSON type) and adds `errors[]` with a JSON pointer
//! and a reason per field to the problem, with the code `invalid_body`.

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::{Endpoint, Request, Response};
use serde_json::Value;

use crate::problem::FieldError;

/// A top-level field of a body schema and the JSON type it must have, if one.
struct Field {
    name: String,
    kind: Option<String>,
    nullable: bool,
}

/// One operation's request body schema.
struct Operation {
    method: String,
    /// The path's segments after the prefix; `None` for a parameter.
    segments: Vec<Option<String>>,
    required: Vec<String>,
    fields: Vec<Field>,
    /// No other fields allowed.
    closed: bool,
}

/// The request body schemas of the API's operations.
pub struct BodySchemas(Vec<Operation>);

impl BodySchemas {
    /// From the OpenAPI document of the operations nested under `prefix`.
    pub fn from_openapi(spec_json: &str, prefix: &str) -> BodySchemas {
        let spec: Value = serde_json::from_str(spec_json).unwrap_or_default();
        let resolve = |schema: &Value| -> Value {
            match schema.get("$ref").and_then(Value::as_str) {
                Some(r) => r
                    .strip_prefix("#/")
                    .map(|p| p.split('/').fold(&spec, |v, k| &v[k]))
                    .cloned()
                    .unwrap_or_default(),
                None => schema.clone(),
            }
        };
        let mut operations = Vec::new();
        for (template, methods) in spec["paths"].as_object().into_iter().flatten() {
            for (method, op) in methods.as_object().into_iter().flatten() {
                // poem-openapi names it `application/json; charset=utf-8`.
                let Some(schema) = op["requestBody"]["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .find(|(content_type, _)| content_type.starts_with("application/json"))
                    .map(|(_, c)| &c["schema"])
                else {
                    continue;
                };
                let schema = resolve(schema);
                if schema["type"] != "object" {
                    continue;
                }
                let fields = schema["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, property)| {
                        let property = resolve(property);
                        Field {
                            name: name.clone(),
                            kind: property["type"].as_str().map(str::to_owned),
                            nullable: property["nullable"] == true,
                        }
                    })
                    .collect();
                operations.push(Operation {
                    method: method.to_uppercase(),
                    segments: format!("{prefix}{template}")
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                        .collect(),
                    required: schema["required"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    fields,
                    closed: schema["additionalProperties"] == false,
                });
            }
        }
        BodySchemas(operations)
    }

    fn find(&self, method: &Method, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find(|op| {
            op.method == method.as_str()
                && op.segments.len() == segments.len()
                && op
                    .segments
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.as_deref().is_none_or(|t| t == *s))
        })
    }

    /// The body's field errors against its operation's schema (empty: none found).
    pub fn field_errors(&self, method: &Method, path: &str, body: &[u8]) -> Vec<FieldError> {
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return vec![FieldError {
                    pointer: String::new(),
                    reason: format!("the body is not JSON: {e}"),
                }];
            }
        };
        let Some(op) = self.find(method, path) else {
            return Vec::new();
        };
        let Some(object) = value.as_object() else {
            return vec![FieldError {
                pointer: String::new(),
                reason: "the body must be a JSON object".into(),
            }];
        };
        let pointer = |name: &str| format!("/{}", name.replace('~', "~0").replace('/', "~1"));
        let mut errors = Vec::new();
        for name in &op.required {
            if object.get(name).is_none_or(Value::is_null) {
                errors.push(FieldError {
                    pointer: pointer(name),
                    reason: "is required".into(),
                });
            }
        }
        for (name, v) in object {
            match op.fields.iter().find(|f| f.name == *name) {
                None if op.closed => errors.push(FieldError {
                    pointer: pointer(name),
                    reason: "is not a field of this request".into(),
                }),
                None => {}
                Some(field) => {
                    let fits = match (field.kind.as_deref(), v) {
                        (_, Value::Null) => field.nullable || !op.required.contains(name),
                        (Some("string"), Value::String(_))
                        | (Some("boolean"), Value::Bool(_))
                        | (Some("array"), Value::Array(_))
                        | (Some("object"), Value::Object(_))
                        | (Some("number"), Value::Number(_))
                        | (None, _) => true,
                        (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
                        _ => false,
                    };
                    if !fits {
                        errors.push(FieldError {
                            pointer: pointer(name),
                            reason: format!(
                                "must be {}",
                                match field.kind.as_deref() {
                                    Some("integer") => "an integer",
                                    Some("array") => "an array",
                                    Some("object") => "an object",
                                    Some("string") => "a string",
                                    Some("boolean") => "true or false",
                                    Some("number") => "a number",
                                    _ => "of another type",
                                }
                            ),
                        });
                    }
                }
            }
        }
        errors
    }
}

/// For a write whose body the framework refused: the problem gets `errors[]` and the code
/// `invalid_body`.
pub async fn describe<E: Endpoint>(
    next: E,
    mut req: Request,
    schemas: Arc<BodySchemas>,
) -> poem::Result<Response> {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return Ok(next.get_response(req).await);
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let body = req.take_body().into_bytes().await?;
    req.set_body(body.clone());
    let mut response = next.get_response(req).await;
    if !matches!(
        response.status(),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
    ) {
        return Ok(response);
    }
    let answer = response.take_body().into_bytes().await?;
    let mut problem: Value = match serde_json::from_slice(&answer) {
        Ok(p) => p,
        Err(_) => {
            response.set_body(answer);
            return Ok(response);
        }
    };
    let refused_as_a_whole = problem["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("parse request payload error"));
    if refused_as_a_whole {
        problem["code"] = "invalid_body".into();
        let mut errors = schemas.field_errors(&method, &path, &body);
        // What the schema does not show (an unknown field of an object that refuses them) the
        // framework's message names.
        let detail = problem["detail"].as_str().unwrap_or_default();
        if errors.is_empty()
            && let Some(field) = detail
                .split_once("unknown field `")
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(field, _)| field)
        {
            errors.push(FieldError {
                pointer: format!("/{}", field.replace('~', "~0").replace('/', "~1")),
                reason: "is not a field of this request".into(),
            });
        }
        if !errors.is_empty() && problem.get("errors").is_none() {
            problem["errors"] = serde_json::to_value(&errors).unwrap_or_default();
        }
        response.set_body(serde_json::to_vec(&problem).unwrap_or_default());
    } else {
        response.set_body(answer);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r##"{
      "paths": {"/things/{id}": {"post": {"requestBody": {"content": {"application/json; charset=utf-8":
        {"schema": {"$ref": "#/components/schemas/Thing"}}}}}}},
      "components": {"schemas": {"Thing": {"type": "object", "required": ["name", "count"],
        "additionalProperties": false,
        "properties": {"name": {"type": "string"}, "count": {"type": "integer"},
                       "note": {"type": "string"}}}}}
    }"##;

    #[test]
    fn each_wrong_field_is_named_by_its_pointer() {
        let schemas = BodySchemas::from_openapi(SPEC, "/api/v1");
        let errors = schemas.field_errors(
            &Method::POST,
            "/api/v1/things/42",
            br#"{"count": 1.5, "note": 3, "extra/field": true}"#,
        );
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/name", "is required"),
                ("/count", "must be an integer"),
                ("/extra~1field", "is not a field of this request"),
                ("/note", "must be a string"),
            ]
        );
        assert!(
            schemas
                .field_errors(
                    &Method::POST,
                    "/api/v1/things/42",
                    br#"{"name": "a", "count": 2}"#
                )
                .is_empty()
        );
        let not_json = schemas.field_errors(&Method::POST, "/api/v1/things/1", b"{\"name\": ");
        assert_eq!(not_json[0].pointer, "");
        assert!(
            not_json[0]
                .reason
                .starts_with("the body is not JSON: EOF while parsing")
        );
        // Another operation: nothing known.
        assert!(
            schemas
                .field_errors(&Method::PUT, "/api/v1/things/42", b"{}")
                .is_empty()
        );
    }
}
