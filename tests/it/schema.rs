//! Guards the compiler cannot give: the two backends' migration trees say the same thing except
//! where a listed exception says why not, and `src/db/schema.rs` (kept by hand for both
//! backends) matches the schema the migrations build on each of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use diemdanh::db::DbConn;
use diesel::QueryableByName;
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(the_diesel_schema_matches_the_migrated_database);

/// A place where the two trees may say different things, and why.
struct Exception {
    migration: &'static str,
    sqlite: &'static [&'static str],
    postgres: &'static [&'static str],
    why: &'static str,
}

const EXCEPTIONS: &[Exception] = &[
    Exception {
        migration: "2026-11-28-000001_init/up.sql",
        sqlite: &["id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1)"],
        postgres: &["id INTEGER PRIMARY KEY CHECK (id = 1)"],
        why: "SQLite lets a PRIMARY KEY column hold NULL unless it says NOT NULL; PostgreSQL's \
              primary keys are never NULL",
    },
    Exception {
        migration: "2026-12-04-000010_quarantine_cap/up.sql",
        sqlite: &[],
        postgres: &[
            "UPDATE sync_quarantine SET body_hash = encode(sha256(convert_to(body, 'UTF8')), 'hex')",
        ],
        why: "SQLite has no SHA-256 to fill in the hash of entries filed before the migration; \
              they keep NULL and are compared by body",
    },
];

fn migrations_dir(backend: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend)
}

/// Every `<migration>/<file>.sql` of one tree, by its relative path.
fn tree(backend: &str) -> BTreeMap<String, String> {
    let root = migrations_dir(backend);
    let mut files = BTreeMap::new();
    for migration in std::fs::read_dir(&root).unwrap() {
        let migration = migration.unwrap().path();
        for file in std::fs::read_dir(&migration).unwrap() {
            let file = file.unwrap().path();
            let relative = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.insert(relative, std::fs::read_to_string(&file).unwrap());
        }
    }
    files
}

/// The statements of a script, comments dropped and whitespace collapsed, so that only what
/// the database is told counts.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    code.split(';')
        .map(|statement| statement.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|statement| !statement.is_empty())
        .collect()
}

#[test]
fn the_two_migration_trees_differ_only_where_listed() {
    let sqlite = tree("sqlite");
    let postgres = tree("postgres");
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the same migrations, with the same files, on both backends"
    );
    let mut used = BTreeSet::new();
    for (file, sqlite_sql) in &sqlite {
        let sqlite_statements = statements(sqlite_sql);
        let postgres_statements = statements(&postgres[file]);
        let only_sqlite: Vec<&String> = sqlite_statements
            .iter()
            .filter(|s| !postgres_statements.contains(s))
            .collect();
        let only_postgres: Vec<&String> = postgres_statements
            .iter()
            .filter(|s| !sqlite_statements.contains(s))
            .collect();
        if only_sqlite.is_empty() && only_postgres.is_empty() {
            assert_eq!(
                sqlite_statements, postgres_statements,
                "{file}: the same statements in the same order"
            );
            continue;
        }
        let exception = EXCEPTIONS
            .iter()
            .find(|e| e.migration == file)
            .unwrap_or_else(|| {
                panic!(
                    "{file} differs between the backends with no listed exception:\n\
                     only SQLite: {only_sqlite:#?}\nonly PostgreSQL: {only_postgres:#?}"
                )
            });
        // A listed difference is a fragment of each differing statement, so that the
        // exception names exactly what differs and nothing else slips in beside it.
        let covered = |differing: &[&String], fragments: &[&str]| {
            differing.len() == fragments.len()
                && differing
                    .iter()
                    .zip(fragments)
                    .all(|(statement, fragment)| statement.contains(fragment))
        };
        assert!(
            covered(&only_sqlite, exception.sqlite) && covered(&only_postgres, exception.postgres),
            "{file}: the differences are not the listed ones ({})\n\
             only SQLite: {only_sqlite:#?}\nonly PostgreSQL: {only_postgres:#?}",
            exception.why
        );
        used.insert(file.clone());
    }
    for exception in EXCEPTIONS {
        assert!(
            used.contains(exception.migration),
            "the exception for {} no longer applies: remove it",
            exception.migration
        );
    }
}

/// A column as `schema.rs` declares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    name: String,
    /// Diesel's SQL type without `Nullable<...>`: `Text`, `BigInt`, `Integer`, `Bool`.
    sql_type: String,
    nullable: bool,
}

/// A table as `schema.rs` declares it.
#[derive(Debug, Default)]
struct Table {
    primary_key: Vec<String>,
    columns: Vec<Column>,
}

/// A `joinable!` line or a foreign key: (child table, parent table, the child's column).
type Join = (String, String, String);

/// The tables `src/db/schema.rs` declares, read from its `diesel::table!` blocks, and its
/// `joinable!` pairs.
fn declared_schema() -> (BTreeMap<String, Table>, Vec<Join>) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db/schema.rs"))
            .unwrap();
    let mut tables = BTreeMap::new();
    let mut joins = Vec::new();
    let mut current: Option<(String, Table)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(join) = line
            .strip_prefix("diesel::joinable!(")
            .and_then(|rest| rest.strip_suffix(");"))
        {
            let (child, rest) = join.split_once(" -> ").unwrap();
            let (parent, column) = rest.split_once(" (").unwrap();
            joins.push((
                child.to_owned(),
                parent.to_owned(),
                column.trim_end_matches(')').to_owned(),
            ));
        } else if let Some((name, key)) = line
            .strip_suffix(") {")
            .and_then(|head| head.split_once(" ("))
        {
            let table = Table {
                primary_key: key.split(", ").map(str::to_owned).collect(),
                columns: Vec::new(),
            };
            current = Some((name.to_owned(), table));
        } else if let Some((name, sql_type)) = line
            .strip_suffix(',')
            .and_then(|column| column.split_once(" -> "))
            && let Some((_, table)) = current.as_mut()
        {
            let (sql_type, nullable) = match sql_type
                .strip_prefix("Nullable<")
                .and_then(|inner| inner.strip_suffix('>'))
            {
                Some(inner) => (inner, true),
                None => (sql_type, false),
            };
            table.columns.push(Column {
                name: name.to_owned(),
                sql_type: sql_type.to_owned(),
                nullable,
            });
        } else if line == "}"
            && let Some((name, table)) = current.take()
        {
            tables.insert(name, table);
        }
    }
    (tables, joins)
}

/// The declared type a diesel SQL type stands for on each backend, as `diesel print-schema`
/// reads them back.
fn declared_type(backend: Backend, sql_type: &str) -> &'static str {
    match (backend, sql_type) {
        (Backend::Sqlite, "Text") => "TEXT",
        (Backend::Sqlite, "BigInt") => "BIGINT",
        (Backend::Sqlite, "Integer") => "INTEGER",
        (Backend::Sqlite, "Bool") => "BOOLEAN",
        (Backend::Postgres, "Text") => "text",
        (Backend::Postgres, "BigInt") => "bigint",
        (Backend::Postgres, "Integer") => "integer",
        (Backend::Postgres, "Bool") => "boolean",
        (_, other) => panic!("schema.rs uses {other}, which this test does not know"),
    }
}

#[derive(QueryableByName)]
struct LiveColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    column_type: String,
    #[diesel(sql_type = BigInt)]
    nullable: i64,
    /// The column's place in the primary key (1-based), 0 when not in it.
    #[diesel(sql_type = BigInt)]
    key_position: i64,
}

#[derive(QueryableByName)]
struct LiveForeignKey {
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// Every column of the migrated database, and its foreign keys, from the database's catalogue.
/// (SQLite lets a primary key column other than an `INTEGER PRIMARY KEY` hold NULL unless it
/// says NOT NULL, so such a column counts as nullable here, as it is.)
fn live_schema(conn: &mut DbConn) -> (Vec<LiveColumn>, Vec<LiveForeignKey>) {
    match conn {
        DbConn::Sqlite(conn) => {
            let tables = "SELECT name FROM sqlite_master WHERE type = 'table' \
                          AND name NOT LIKE 'sqlite_%' AND name != '__diesel_schema_migrations'";
            let columns = diesel::sql_query(format!(
                "SELECT t.name AS table_name, c.name AS column_name, c.type AS column_type, \
                 CASE WHEN c.\"notnull\" = 1 OR (c.pk = 1 AND c.type = 'INTEGER') THEN 0 \
                 ELSE 1 END AS nullable, c.pk AS key_position \
                 FROM ({tables}) t, pragma_table_info(t.name) c"
            ))
            .load(conn)
            .unwrap();
            let keys = diesel::sql_query(format!(
                "SELECT t.name AS child, f.\"table\" AS parent, f.\"from\" AS column_name \
                 FROM ({tables}) t, pragma_foreign_key_list(t.name) f"
            ))
            .load(conn)
            .unwrap();
            (columns, keys)
        }
        DbConn::Postgres(conn) => {
            let columns = diesel::sql_query(
                "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
                 c.data_type::text AS column_type, \
                 CASE WHEN c.is_nullable = 'YES' THEN 1 ELSE 0 END::bigint AS nullable, \
                 COALESCE(k.ordinal_position, 0)::bigint AS key_position \
                 FROM information_schema.columns c \
                 JOIN information_schema.tables t \
                   ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
                 LEFT JOIN information_schema.table_constraints p \
                   ON p.table_schema = c.table_schema AND p.table_name = c.table_name \
                  AND p.constraint_type = 'PRIMARY KEY' \
                 LEFT JOIN information_schema.key_column_usage k \
                   ON k.constraint_name = p.constraint_name AND k.table_schema = c.table_schema \
                  AND k.table_name = c.table_name AND k.column_name = c.column_name \
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
                   AND c.table_name != '__diesel_schema_migrations'",
            )
            .load(conn)
            .unwrap();
            let keys = diesel::sql_query(
                "SELECT child.relname::text AS child, parent.relname::text AS parent, \
                 a.attname::text AS column_name \
                 FROM pg_constraint k \
                 JOIN pg_class child ON child.oid = k.conrelid \
                 JOIN pg_class parent ON parent.oid = k.confrelid \
                 JOIN pg_namespace n ON n.oid = child.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) \
                 WHERE k.contype = 'f' AND n.nspname = current_schema()",
            )
            .load(conn)
            .unwrap();
            (columns, keys)
        }
    }
}

fn the_diesel_schema_matches_the_migrated_database(backend: Backend) {
    let Some(app) = TestApp::start(backend) else {
        return;
    };
    let (declared, joins) = declared_schema();
    assert!(
        declared.len() > 20 && declared.values().all(|t| !t.columns.is_empty()),
        "schema.rs was read: {:?}",
        declared.keys()
    );
    let (columns, foreign_keys) = live_schema(&mut app.pool.get().unwrap());

    let mut live: BTreeMap<String, Table> = BTreeMap::new();
    let mut keys: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for column in columns {
        if column.key_position > 0 {
            keys.entry(column.table_name.clone())
                .or_default()
                .push((column.key_position, column.column_name.clone()));
        }
        live.entry(column.table_name)
            .or_default()
            .columns
            .push(Column {
                name: column.column_name,
                sql_type: column.column_type,
                nullable: column.nullable == 1,
            });
    }
    for (table, mut key) in keys {
        key.sort();
        live.get_mut(&table).unwrap().primary_key = key.into_iter().map(|(_, c)| c).collect();
    }

    assert_eq!(
        declared.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>(),
        "schema.rs declares exactly the migrated tables"
    );
    for (name, table) in &declared {
        let expected: BTreeSet<Column> = table
            .columns
            .iter()
            .map(|c| Column {
                sql_type: declared_type(backend, &c.sql_type).to_owned(),
                ..c.clone()
            })
            .collect();
        let found: BTreeSet<Column> = live[name].columns.iter().cloned().collect();
        assert_eq!(
            expected.difference(&found).collect::<Vec<_>>(),
            found.difference(&expected).collect::<Vec<_>>(),
            "{name}: columns in schema.rs (left) and not in the database, and the reverse (right)"
        );
        assert_eq!(
            table.primary_key, live[name].primary_key,
            "{name}: the primary key"
        );
    }
    // Every `joinable!` follows a foreign key the database enforces.
    let enforced: BTreeSet<Join> = foreign_keys
        .into_iter()
        .map(|k| (k.child, k.parent, k.column_name))
        .collect();
    for join in &joins {
        assert!(
            enforced.contains(join),
            "joinable!{join:?} has no foreign key behind it"
        );
    }
    assert!(!joins.is_empty(), "schema.rs's joinable! lines were read");
}
