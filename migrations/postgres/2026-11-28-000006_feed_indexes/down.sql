CREATE INDEX materials_course ON materials (course_id);
DROP INDEX materials_course_rev;
DROP INDEX course_trainers_course_rev;
DROP INDEX enrollments_course_rev;
CREATE INDEX sessions_course ON sessions (course_id);
DROP INDEX sessions_course_rev;
DROP INDEX attendance_session_rev;
