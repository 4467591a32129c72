-- cutter baseline fixture for reference schema version 1.
--
-- The state the seeds describe (O8E report 04, O8C): 158 information units, 165 unit
-- versions, 60 lifecycle log rows; 60 units enacted (the constitution, N = 60), 98 draft,
-- 7 of the drafts with a second version. Empty ledger. Fully deterministic: fixed ids,
-- texts and timestamps, so every installation has the same content digests.
-- Installed by the owner (it inserts directly; the immutability triggers only guard
-- UPDATE and DELETE).

CREATE TEMPORARY TABLE baseline_sentence (n integer PRIMARY KEY, sentence text NOT NULL) ON COMMIT DROP;
INSERT INTO baseline_sentence (n, sentence) VALUES
    (0, 'Nước Cộng hòa xã hội chủ nghĩa Việt Nam là nước độc lập, có chủ quyền, thống nhất và toàn vẹn lãnh thổ.'),
    (1, 'Mọi người đều bình đẳng trước pháp luật.'),
    (2, 'Không ai bị phân biệt đối xử trong đời sống chính trị, dân sự, kinh tế, văn hóa, xã hội.'),
    (3, 'Quyền công dân không tách rời nghĩa vụ công dân.'),
    (4, 'Mọi người có nghĩa vụ tôn trọng quyền của người khác.'),
    (5, 'Công dân có trách nhiệm thực hiện nghĩa vụ đối với Nhà nước và xã hội.'),
    (6, 'Nhà nước bảo đảm và phát huy quyền làm chủ của Nhân dân.'),
    (7, 'Doanh nghiệp có quyền tự do kinh doanh trong những ngành, nghề mà luật không cấm.');

-- Units 1–60: the constitution, enacted.
INSERT INTO public.information_unit
    (id, canonical_address, title, unit_kind_ref, identity_profile, publication_type, owner_ref,
     document_id, source_version_id, lifecycle_status, change_set_id, created_by,
     created_at, updated_at, enacted_at)
SELECT g, format('vn-constitution-2013/dieu-%s', g), format('Điều %s', g), 'vocab.unit_kind.law_unit',
       jsonb_build_object('primary_section_type_ref', 'vocab.section_type.article'),
       'constitution', 'quoc-hoi', 'vn-constitution-2013', '2013-11-28', 'enacted',
       'cs-baseline-2013', 'seed-o7',
       timestamptz '2026-05-10 00:00:00+00' + g * interval '1 minute',
       timestamptz '2026-05-12 00:00:00+00' + g * interval '1 minute',
       timestamptz '2026-05-12 00:00:00+00' + g * interval '1 minute'
FROM generate_series(1, 60) AS g;

-- Units 61–158: the competition law, draft.
INSERT INTO public.information_unit
    (id, canonical_address, title, unit_kind_ref, identity_profile, publication_type, owner_ref,
     document_id, source_version_id, lifecycle_status, change_set_id, created_by,
     created_at, updated_at, enacted_at)
SELECT g, format('vn-competition-law-2018/dieu-%s', g - 60), format('Điều %s', g - 60),
       'vocab.unit_kind.law_unit',
       jsonb_build_object('primary_section_type_ref', 'vocab.section_type.article'),
       'law', NULL, 'vn-competition-law-2018', '2018-06-12', 'draft',
       'cs-baseline-2018', 'seed-o7',
       timestamptz '2026-05-15 00:00:00+00' + g * interval '1 minute',
       timestamptz '2026-05-15 00:00:00+00' + g * interval '1 minute',
       NULL
FROM generate_series(61, 158) AS g;

-- Version 1 of every unit (ids 1–158), version 2 of units 61–67 (ids 159–165).
INSERT INTO public.unit_version
    (id, information_unit_id, version_no, body, body_sha256, lifecycle_status, created_by, created_at)
SELECT v.id, v.unit, v.version_no, v.body, encode(sha256(convert_to(v.body, 'UTF8')), 'hex'),
       CASE WHEN v.unit <= 60 THEN 'enacted' ELSE 'draft' END, 'seed-o7',
       timestamptz '2026-05-10 00:00:00+00' + v.id * interval '1 minute'
FROM (
    SELECT g AS id, g AS unit, 1 AS version_no,
           format('%s %s %s', iu.title || '.', a.sentence, b.sentence) AS body
      FROM generate_series(1, 158) AS g
      JOIN public.information_unit iu ON iu.id = g
      JOIN baseline_sentence a ON a.n = g % 8
      JOIN baseline_sentence b ON b.n = (g * 3 + 1) % 8
    UNION ALL
    SELECT 98 + g AS id, g AS unit, 2 AS version_no,
           format('%s (sửa đổi) %s', iu.title || '.', a.sentence) AS body
      FROM generate_series(61, 67) AS g
      JOIN public.information_unit iu ON iu.id = g
      JOIN baseline_sentence a ON a.n = (g + 5) % 8
) v;

-- One lifecycle log row per enacted unit.
INSERT INTO public.iu_lifecycle_log
    (id, information_unit_id, from_status, to_status, actor, run_id, change_set_id, reason, created_at)
SELECT g, g, 'draft', 'enacted', 'seed-o7', 'baseline-2013', 'cs-baseline-2013', 'lifecycle_enact',
       timestamptz '2026-05-12 00:00:00+00' + g * interval '1 minute'
FROM generate_series(1, 60) AS g;

SELECT setval(pg_get_serial_sequence('public.information_unit', 'id'), 158);
SELECT setval(pg_get_serial_sequence('public.unit_version', 'id'), 165);
SELECT setval(pg_get_serial_sequence('public.iu_lifecycle_log', 'id'), 60);
