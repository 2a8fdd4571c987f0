{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date', 'sku_id'],
        on_schema_change='fail',
    )
}}

{#- Change-point sources are open-ended: a price changed on day t holds until the next change. -#}
{%- set w = incremental_window(
    sources=[
        {'relation': source('raw', 'own_prices'), 'date_column': 'effective_date', 'open_ended': true},
        {'relation': source('raw', 'promotions'), 'date_column': 'start_date', 'open_ended': true},
        {'relation': source('raw', 'competitor_prices'), 'date_column': 'effective_date', 'open_ended': true},
        {'relation': source('raw', 'daily_sales'), 'date_column': 'date'},
    ],
) -%}

with

spine as (

    select * from {{ ref('int_sku_days_spined') }}
    where {{ in_window('date', w, 'write') }}

),

shelf_prices as (

    select * from {{ ref('int_shelf_prices_forward_filled') }}
    where {{ in_window('date', w, 'write') }}

),

promotions as (

    select * from {{ ref('int_promotions_exploded') }}
    where {{ in_window('date', w, 'write') }}

),

competitor_changes as (

    -- by the days competitor prices changed; the last change on or before a day holds that day
    select * from {{ ref('int_competitor_prices_summarized') }}

),
{%- if w.write_from %}

last_before_window as (

    select sku_id, max(changed_on) as changed_on
    from competitor_changes
    where changed_on <= cast('{{ w.write_from }}' as date)
    group by sku_id

),
{%- endif %}

competitor_summary as (

    -- an incremental run needs each SKU's changes from its last one on or before the first written
    -- day: the as-of join sorted all 12 M of them for a day's 100,000 rows (large tier, the day's
    -- SELECT: 2.4-3.0 s before, 0.7-0.8 s)
    select competitor_changes.*
    from competitor_changes
    {%- if w.write_from %}
    left join last_before_window
        on competitor_changes.sku_id = last_before_window.sku_id
    where last_before_window.changed_on is null
        or competitor_changes.changed_on >= last_before_window.changed_on
    {%- endif %}

),

products as (

    select * from {{ ref('dim_products') }}

),

priced as (

    select
        spine.date,
        spine.sku_id,
        -- before the first recorded shelf price the SKU sells at its list price
        coalesce(shelf_prices.shelf_price, products.list_price) as shelf_price,
        shelf_prices.shelf_price is null as is_shelf_price_imputed,
        shelf_prices.shelf_price_since,
        products.list_price,
        promotions.promo_id,
        promotions.promo_type,
        coalesce(promotions.discount_pct, 0) as discount_pct,
        promotions.promo_id is not null as is_promo,
        promotions.promo_day_number,
        competitor_summary.competitor_min_price,
        competitor_summary.competitor_mean_price,
        coalesce(competitor_summary.competitor_count, 0) as competitor_count
    from spine
    left join shelf_prices
        on spine.date = shelf_prices.date
        and spine.sku_id = shelf_prices.sku_id
    left join promotions
        on spine.date = promotions.date
        and spine.sku_id = promotions.sku_id
    {{ asof_left_join('competitor_summary', 'competitor_summary', 'spine', ['sku_id'], 'date', 'changed_on') }}
    left join products
        on spine.sku_id = products.sku_id

),

final as (

    select
        date,
        sku_id,
        shelf_price,
        is_shelf_price_imputed,
        shelf_price_since,
        promo_id,
        promo_type,
        discount_pct,
        is_promo,
        promo_day_number,
        {{ round_to('shelf_price * (1 - discount_pct / 100)') }} as effective_price,
        case
            when list_price > 0 then {{ round_to('shelf_price * (1 - discount_pct / 100)') }} / list_price
        end as price_index,
        competitor_min_price,
        competitor_mean_price,
        competitor_count,
        -- > 0: we are dearer than the cheapest competitor, as a share of its price
        case
            when competitor_min_price > 0
                then {{ round_to('shelf_price * (1 - discount_pct / 100)') }} / competitor_min_price - 1
        end as competitor_gap_pct,
        {{ audit_columns(w) }}
    from priced

)

select * from final
