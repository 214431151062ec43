DROP INDEX attendance_report;
DROP INDEX courses_end_date;
DROP INDEX people_name_key;
DROP TABLE unit_events;
DROP TABLE person_unit_history;
