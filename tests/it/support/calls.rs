//! Typed calls of the API, so that a scenario reads as what a caller does: `app.get(&admin,
//! path)`, `app.put_if_match(&admin, path, &etag, &body)`, `.expect_error(409, "unit_in_use")`.
//! Each sends exactly the request `TestApp::call` would and checks the answer against the spec;
//! suites that test the raw HTTP itself (headers, framing, bodies) keep `call`, `call_with`
//! and `send_raw`.

use serde_json::{Value, json};

use super::{BytesResponse, Response, TestApp};

impl TestApp {
    /// `GET path` as `token`.
    pub fn get(&self, token: &str, path: &str) -> Response {
        self.call("GET", path, Some(token), None)
    }

    /// `POST path` with a JSON body as `token`.
    pub fn post(&self, token: &str, path: &str, body: &Value) -> Response {
        self.call("POST", path, Some(token), Some(body))
    }

    /// `POST path` without a body as `token`: an action (dismiss, re-apply, sign out).
    pub fn post_empty(&self, token: &str, path: &str) -> Response {
        self.call("POST", path, Some(token), None)
    }

    /// `PUT path` with a JSON body as `token`, without `If-Match`.
    pub fn put(&self, token: &str, path: &str, body: &Value) -> Response {
        self.call("PUT", path, Some(token), Some(body))
    }

    /// `PATCH path` with a JSON body as `token`, without `If-Match`.
    pub fn patch(&self, token: &str, path: &str, body: &Value) -> Response {
        self.call("PATCH", path, Some(token), Some(body))
    }

    /// `DELETE path` as `token`, without `If-Match`.
    pub fn delete(&self, token: &str, path: &str) -> Response {
        self.call("DELETE", path, Some(token), None)
    }

    /// `PUT path` as `token`, replacing the revision `if_match` (an ETag, `"3"`).
    pub fn put_if_match(&self, token: &str, path: &str, if_match: &str, body: &Value) -> Response {
        self.call_with(
            "PUT",
            path,
            Some(token),
            Some(body),
            &[("If-Match", if_match)],
        )
    }

    /// `DELETE path` as `token`, deleting the revision `if_match`.
    pub fn delete_if_match(&self, token: &str, path: &str, if_match: &str) -> Response {
        self.call_with("DELETE", path, Some(token), None, &[("If-Match", if_match)])
    }

    /// `GET path` without a token, not checked against the spec: a file of the web apps.
    pub fn get_static(&self, path: &str) -> Response {
        self.send_raw("GET", path, None, None, &[])
    }

    /// The start page of a web app at `path`, which must be served as the console and the field
    /// app are: HTML holding `<div id="{root}"`, under a policy that runs scripts from the
    /// server only (nothing inline, no eval), revalidated on every load by its ETag.
    #[track_caller]
    pub fn start_page(&self, path: &str, root: &str) -> Response {
        let page = self.get_static(path);
        assert_eq!(page.status, 200);
        assert!(
            page.required_header("content-type")
                .starts_with("text/html")
        );
        assert!(
            page.text.contains(&format!("<div id=\"{root}\"")),
            "{}",
            page.text
        );
        let policy = page.required_header("content-security-policy");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(
            !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"),
            "{policy}"
        );
        assert_eq!(page.required_header("cache-control"), "no-cache");
        let tag = page.required_header("etag");
        let again = self.send_raw("GET", path, None, None, &[("If-None-Match", tag)]);
        assert_eq!(again.status, 304);
        // A proxy that compresses the page weakens its tag (nginx does): the weak form of the
        // tag revalidates it too, as RFC 9110 compares If-None-Match.
        let weak = format!("W/{tag}");
        let again = self.send_raw("GET", path, None, None, &[("If-None-Match", &weak)]);
        assert_eq!(again.status, 304, "{weak}");
        page
    }

    /// `path` named with its hash (the ETag of `served`) as `?v=`, as a web app names its files:
    /// cached for good.
    #[track_caller]
    pub fn expect_versioned_immutable(&self, path: &str, served: &Response) {
        let hash = served.required_header("etag").trim_matches('"');
        let versioned = self.get_static(&format!("{path}?v={hash}"));
        assert!(
            versioned
                .required_header("cache-control")
                .contains("immutable")
        );
    }

    /// Paths outside the web apps' served folders: each a 404 `not_found`.
    #[track_caller]
    pub fn expect_not_served(&self, paths: &[&str]) {
        for path in paths {
            let response = self.get_static(path);
            assert_eq!(response.status, 404, "{path}");
            assert_eq!(response.json["code"], "not_found", "{path}");
        }
    }

    /// `POST path` with any bytes of any content type as `token`, not checked against the spec:
    /// a malformed body, a wrong type, one too large.
    pub fn post_bytes(&self, token: &str, path: &str, body: &[u8], content_type: &str) -> Response {
        self.send_raw("POST", path, Some(token), Some((body, content_type)), &[])
    }

    /// `POST /api/v1/imports/people{query}` with a CSV roster as `token`; `query` is empty or a
    /// query string (`?dry_run=false&course_id=…`).
    pub fn import_csv(&self, token: &str, query: &str, csv: &[u8]) -> Response {
        self.send_checked(
            "POST",
            &format!("/api/v1/imports/people{query}"),
            Some(token),
            (csv, "text/csv"),
        )
    }

    /// `GET path` as `token`, the body kept as bytes (a file).
    pub fn get_file(&self, token: &str, path: &str) -> BytesResponse {
        self.fetch("GET", path, Some(token), None, &[])
    }

    /// `GET path` as `token` with request headers (`Range`, `If-Range`, `Accept-Encoding`, …),
    /// the body kept as bytes.
    pub fn get_file_with(
        &self,
        token: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> BytesResponse {
        self.fetch("GET", path, Some(token), None, headers)
    }

    /// A download resumed: `GET path` from `range` on as `token`, if the file is still the
    /// version `if_range` (an ETag); otherwise the whole file.
    pub fn resume_file(
        &self,
        token: &str,
        path: &str,
        range: &str,
        if_range: &str,
    ) -> BytesResponse {
        self.get_file_with(token, path, &[("Range", range), ("If-Range", if_range)])
    }

    /// Sends a file (`POST` or `PUT` of its bytes and content type) to `path` as `token`.
    pub fn send_file(
        &self,
        token: &str,
        method: &str,
        path: &str,
        file: (&[u8], &str),
    ) -> BytesResponse {
        self.fetch(method, path, Some(token), Some(file), &[])
    }

    /// A sign-in from a device named "test device", whatever it answers.
    pub fn try_login(&self, username: &str, password: &str) -> Response {
        let body =
            json!({ "username": username, "password": password, "device_name": "test device" });
        self.call("POST", "/api/v1/auth/login", None, Some(&body))
    }

    /// Presents a refresh token (`POST /api/v1/auth/refresh`), whatever it answers.
    pub fn refresh(&self, refresh_token: &Value) -> Response {
        let body = json!({ "refresh_token": refresh_token });
        self.call("POST", "/api/v1/auth/refresh", None, Some(&body))
    }

    /// The signed-in account (`GET /api/v1/me`).
    #[track_caller]
    pub fn me(&self, token: &str) -> Value {
        self.get_ok(token, "/api/v1/me")
    }

    /// An access token of one of the demo data's accounts (`diemdanh demo` prints them): the
    /// administrator `admin`, the trainers `hoa.nguyen` and `tuan.le`, the trainee
    /// `hocvien.demo`, the organisers `doan.pleiku`, `doan.thongnhat` and `tinhdoan.daotao`.
    #[track_caller]
    pub fn demo_token(&self, username: &str) -> String {
        let login = diemdanh::demo::logins()
            .into_iter()
            .find(|login| login.username == username)
            .unwrap_or_else(|| panic!("{username} is not a demo account"));
        self.token(username, &login.password)
    }
}

impl Response {
    /// The answer is the error `code` with `status` (a stable snake_case code and a message).
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer; body: {}",
            self.text
        );
        assert!(
            self.json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error says what is wrong: {}",
            self.text
        );
        self
    }

    /// The first of the answer's field errors (`details`) is `code` on `field`.
    #[track_caller]
    pub fn expect_detail(self, field: &str, code: &str) -> Self {
        let first = &self.json["details"][0];
        assert_eq!(
            (first["field"].as_str(), first["code"].as_str()),
            (Some(field), Some(code)),
            "unexpected field error; body: {}",
            self.text
        );
        self
    }
}
