// Diesel table definitions shared by both backends; kept by hand in lockstep with migrations/.
// Column types are the common subset of SQLite and PostgreSQL (TEXT, BIGINT, INTEGER).

diesel::table! {
    server_settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> BigInt,
        user_id -> Nullable<Text>,
        username -> Nullable<Text>,
        device_id -> Nullable<Text>,
        address -> Nullable<Text>,
        action -> Text,
        object_type -> Nullable<Text>,
        object_id -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Text,
        scope -> Text,
        failed_at -> BigInt,
    }
}

diesel::table! {
    database_identity (id) {
        id -> Integer,
        epoch -> BigInt,
        began_at -> BigInt,
    }
}

diesel::table! {
    revision_counter (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    units (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        name_key -> Text,
        kind -> Text,
        parent_id -> Nullable<Text>,
        valid_from -> Nullable<Text>,
        valid_to -> Nullable<Text>,
        merged_into_id -> Nullable<Text>,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        stamps -> Text,
    }
}

diesel::table! {
    people (id) {
        id -> Text,
        full_name -> Text,
        name_key -> Text,
        sort_key -> Text,
        birth_date -> Nullable<Text>,
        gender -> Nullable<Text>,
        phone -> Nullable<Text>,
        position -> Text,
        unit_id -> Nullable<Text>,
        term -> Nullable<Text>,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        stamps -> Text,
        position_since -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        role -> Text,
        person_id -> Nullable<Text>,
        password_hash -> Text,
        disabled_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        unit_id -> Nullable<Text>,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        clock_flagged_at -> Nullable<BigInt>,
        quarantine_full_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        device_id -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        replaced_by -> Nullable<Text>,
    }
}

diesel::table! {
    courses (id) {
        id -> Text,
        code -> Nullable<Text>,
        title -> Text,
        title_key -> Text,
        description -> Nullable<Text>,
        organizing_unit_id -> Nullable<Text>,
        management_level -> Text,
        start_date -> Text,
        end_date -> Text,
        place -> Nullable<Text>,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        stamps -> Text,
    }
}

diesel::table! {
    course_trainers (id) {
        id -> Text,
        course_id -> Text,
        user_id -> Text,
        role -> Text,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        stamps -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        course_id -> Text,
        topic -> Text,
        starts_at -> BigInt,
        ends_at -> BigInt,
        place -> Nullable<Text>,
        trainer_id -> Nullable<Text>,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        stamps -> Text,
    }
}

diesel::table! {
    enrollments (id) {
        id -> Text,
        course_id -> Text,
        person_id -> Text,
        status -> Text,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        stamps -> Text,
    }
}

diesel::table! {
    attendance (id) {
        id -> Text,
        session_id -> Text,
        person_id -> Text,
        status -> Text,
        checked_in_at -> Nullable<BigInt>,
        note -> Nullable<Text>,
        recorded_by -> Text,
        recorded_device -> Nullable<Text>,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        stamps -> Text,
    }
}

diesel::table! {
    materials (id) {
        id -> Text,
        course_id -> Text,
        title -> Text,
        kind -> Text,
        language -> Text,
        file_name -> Nullable<Text>,
        content_type -> Nullable<Text>,
        size_bytes -> Nullable<BigInt>,
        sha256 -> Nullable<Text>,
        version -> Integer,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        stamps -> Text,
    }
}

diesel::table! {
    sync_nodes (number) {
        number -> Integer,
        node -> Text,
    }
}

diesel::table! {
    sync_mutations (mutation_id) {
        mutation_id -> Text,
        device -> Integer,
        body_hash -> Binary,
        result -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sync_quarantine (id) {
        id -> Text,
        mutation_id -> Text,
        device_id -> Text,
        user_id -> Text,
        collection -> Text,
        record_id -> Text,
        course_id -> Nullable<Text>,
        body -> Text,
        reason -> Text,
        message -> Text,
        status -> Text,
        created_at -> BigInt,
        resolved_at -> Nullable<BigInt>,
        resolved_by -> Nullable<Text>,
        body_hash -> Nullable<Text>,
    }
}

diesel::table! {
    sync_conflicts (id) {
        id -> Text,
        collection -> Text,
        record_id -> Text,
        course_id -> Nullable<Text>,
        field -> Text,
        winning_value -> Text,
        winning_stamp -> Text,
        losing_value -> Text,
        losing_stamp -> Text,
        created_at -> BigInt,
        resolved_at -> Nullable<BigInt>,
        resolved_by -> Nullable<Text>,
    }
}

diesel::table! {
    sync_aliases (collection, alias_id) {
        collection -> Text,
        alias_id -> Text,
        canonical_id -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(people -> units (unit_id));
diesel::joinable!(users -> people (person_id));
diesel::joinable!(devices -> users (user_id));
diesel::joinable!(refresh_tokens -> devices (device_id));
diesel::joinable!(courses -> units (organizing_unit_id));
diesel::joinable!(course_trainers -> courses (course_id));
diesel::joinable!(course_trainers -> users (user_id));
diesel::joinable!(sessions -> courses (course_id));
diesel::joinable!(sessions -> users (trainer_id));
diesel::joinable!(enrollments -> courses (course_id));
diesel::joinable!(enrollments -> people (person_id));
diesel::joinable!(attendance -> sessions (session_id));
diesel::joinable!(attendance -> people (person_id));
diesel::joinable!(attendance -> users (recorded_by));
diesel::joinable!(attendance -> devices (recorded_device));
diesel::joinable!(materials -> courses (course_id));

diesel::allow_tables_to_appear_in_same_query!(
    server_settings,
    revision_counter,
    units,
    people,
    users,
    devices,
    refresh_tokens,
    courses,
    course_trainers,
    sessions,
    enrollments,
    attendance,
    materials,
    sync_mutations,
    sync_nodes,
    sync_quarantine,
    sync_conflicts,
    sync_aliases,
);

diesel::table! {
    watermelon_pulls (device_id, pulled_at) {
        device_id -> Text,
        pulled_at -> BigInt,
        user_id -> Text,
        courses -> Nullable<Text>,
        issued_at -> BigInt,
    }
}

diesel::table! {
    watermelon_pushed (device_id, collection, record_id) {
        device_id -> Text,
        collection -> Text,
        record_id -> Text,
        canonical_id -> Text,
        in_sync_rev -> Nullable<BigInt>,
        retry_key -> Nullable<Text>,
        mutation_id -> Nullable<Text>,
        deleted_on_device -> Bool,
        pushed_rev -> BigInt,
    }
}

// Roster import, unit reorganisation and reports (migration 2026-11-28-000005_reports).

diesel::table! {
    person_unit_history (id) {
        id -> Text,
        person_id -> Text,
        unit_id -> Text,
        left_on -> Text,
        reason -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    unit_events (id) {
        id -> Text,
        unit_id -> Text,
        kind -> Text,
        effective_date -> Text,
        old_name -> Nullable<Text>,
        new_name -> Nullable<Text>,
        target_unit_id -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    training_plans (id) {
        id -> Text,
        unit_id -> Text,
        year -> Integer,
        title -> Text,
        target_positions -> Text,
        target_percent -> Integer,
        rule -> Text,
        min_rate -> Nullable<Integer>,
        min_sessions -> Nullable<Integer>,
        rev -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        elected_since -> Nullable<Text>,
    }
}

diesel::table! {
    training_plan_courses (plan_id, ordinal) {
        plan_id -> Text,
        ordinal -> Integer,
        course_id -> Text,
        planned_start -> Text,
        planned_end -> Text,
    }
}

diesel::table! {
    training_plan_topics (plan_id, ordinal) {
        plan_id -> Text,
        ordinal -> Integer,
        topic -> Text,
        topic_key -> Text,
    }
}

diesel::joinable!(person_unit_history -> people (person_id));
diesel::joinable!(person_unit_history -> units (unit_id));
diesel::joinable!(training_plan_courses -> courses (course_id));

// One pair per call: listing two older tables together would repeat their existing impls.
diesel::allow_tables_to_appear_in_same_query!(person_unit_history, people);
diesel::allow_tables_to_appear_in_same_query!(person_unit_history, units);
diesel::allow_tables_to_appear_in_same_query!(unit_events, units);
diesel::allow_tables_to_appear_in_same_query!(training_plan_courses, courses);
// The coverage report counts attendance per (course, person).
diesel::allow_columns_to_appear_in_same_group_by_clause!(
    sessions::course_id,
    attendance::person_id
);
