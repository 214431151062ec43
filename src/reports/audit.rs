//! The audit trail as a file.

use super::render::{Sheet, Value};
use crate::domain::audit::AuditEntry;
use crate::domain::values::format_ms;

/// Audit entries as one sheet, newest first as given. Details stay JSON text.
pub fn sheets(entries: &[AuditEntry]) -> Vec<Sheet> {
    let rows = entries
        .iter()
        .map(|entry| {
            vec![
                Value::Text(format_ms(entry.at)),
                Value::opt_text(entry.user_id.as_deref()),
                Value::opt_text(entry.username.as_deref()),
                Value::opt_text(entry.device_id.as_deref()),
                Value::opt_text(entry.address.as_deref()),
                Value::Text(entry.action.clone()),
                Value::opt_text(entry.object_type.as_deref()),
                Value::opt_text(entry.object_id.as_deref()),
                Value::Text(entry.details.clone()),
            ]
        })
        .collect();
    vec![Sheet {
        name: "Nhật ký thao tác".into(),
        headers: [
            "Thời điểm (UTC)",
            "Mã tài khoản",
            "Tên đăng nhập",
            "Thiết bị",
            "Địa chỉ",
            "Thao tác",
            "Loại đối tượng",
            "Mã đối tượng",
            "Chi tiết",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }]
}
