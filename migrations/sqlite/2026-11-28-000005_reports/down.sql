DROP INDEX attendance_report;
DROP INDEX courses_end_date;
DROP TABLE unit_events;
DROP TABLE person_unit_history;
