with

source as (

    -- Landing writes raw.id_codes; a warehouse landed before it existed reads as no rows
    -- (select_model_output checks for the table when the view is built).
    {{ select_model_output('raw', 'id_codes', {
        'id_column': 'varchar',
        'id': 'bigint',
        'code': 'varchar',
        '_batch_date': 'date',
    }) }}

),

final as (

    -- one code per id: landing records a code once; should a later batch record another for the
    -- same id, the latest wins
    select
        id_column,
        id,
        code
    from (
        select
            lower(trim(id_column)) as id_column,
            id,
            code,
            row_number() over (
                partition by lower(trim(id_column)), id order by _batch_date desc, code
            ) as code_rank
        from source
        where id_column is not null and id is not null and code is not null
    ) as ranked
    where code_rank = 1

)

select * from final
