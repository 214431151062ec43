DROP INDEX attendance_report;
DROP INDEX people_position;
DROP INDEX courses_end_date;
DROP TABLE unit_events;
DROP TABLE person_unit_history;
