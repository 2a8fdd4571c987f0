with

products as (

    select * from {{ ref('stg_shop__products') }}

),

warehouses as (

    select * from {{ ref('stg_shop__warehouses') }}

),

purchase_orders as (

    select * from {{ ref('stg_shop__purchase_orders') }}

),

own_prices as (

    select * from {{ ref('stg_shop__own_prices') }}

),

sku_codes as (

    select id, code from {{ ref('stg_shop__id_codes') }}
    where id_column = 'sku_id'

),

first_sales as (

    -- the first day a SKU sold: its launch when neither the master nor the prices tell (a retailer's
    -- export rarely has launch dates, and a late-starting SKU is not missing its early weeks).
    -- From raw: a correction never moves a row's date, and the deduplicated view costs a full rank.
    select
        cast(sku_id as bigint) as sku_id,
        cast(min(date) as date) as first_sale_date
    from {{ source('raw', 'daily_sales') }}
    where sku_id is not null
    group by cast(sku_id as bigint)

),

purchase_orders_landed as (

    {{ source_has_rows(source('raw', 'purchase_orders')) }}

),

latest_purchase_orders as (

    select
        sku_id,
        supplier_id,
        unit_cost,
        row_number() over (partition by sku_id order by order_date desc, po_id desc) as recency_rank
    from purchase_orders
    where sku_id is not null

),

purchase_order_summary as (

    select
        sku_id,
        count(*) as purchase_orders,
        avg(cast(lead_time_days as double precision)) as mean_lead_time_days,
        avg(cast(greatest(days_late, 0) as double precision)) as mean_days_late
    from purchase_orders
    where sku_id is not null
    group by sku_id

),

first_prices as (

    select
        sku_id,
        effective_date as first_price_date,
        shelf_price as first_shelf_price
    from (
        select
            sku_id,
            effective_date,
            shelf_price,
            row_number() over (partition by sku_id order by effective_date) as price_rank
        from own_prices
    ) as ranked
    where price_rank = 1

),

joined as (

    select
        products.sku_id,
        -- the retailer's own code where the id landed as one ('OJ-TROP-64'), else the id as text
        coalesce(sku_codes.code, cast(products.sku_id as varchar)) as sku_code,
        products.sku_name,
        products.category_l1,
        products.category_l2,
        products.brand,
        coalesce(products.unit_cost, latest_purchase_orders.unit_cost) as unit_cost,
        products.unit_cost is null and latest_purchase_orders.unit_cost is not null as is_unit_cost_imputed,
        coalesce(products.list_price, first_prices.first_shelf_price) as list_price,
        products.list_price is null and first_prices.first_shelf_price is not null as is_list_price_imputed,
        coalesce(
            products.launch_date, least(first_prices.first_price_date, first_sales.first_sale_date)
        ) as launch_date,
        products.launch_date is null
            and coalesce(first_prices.first_price_date, first_sales.first_sale_date) is not null
            as is_launch_date_imputed,
        products.warehouse_id,
        warehouses.warehouse_name,
        warehouses.region as warehouse_region,
        latest_purchase_orders.supplier_id,
        -- null, not 0, where no purchase order was ever landed (an optional table)
        case
            when purchase_orders_landed.has_rows then coalesce(purchase_order_summary.purchase_orders, 0)
        end as purchase_orders,
        purchase_order_summary.mean_lead_time_days,
        purchase_order_summary.mean_days_late
    from products
    cross join purchase_orders_landed
    left join sku_codes
        on products.sku_id = sku_codes.id
    left join first_sales
        on products.sku_id = first_sales.sku_id
    left join warehouses
        on products.warehouse_id = warehouses.warehouse_id
    left join latest_purchase_orders
        on products.sku_id = latest_purchase_orders.sku_id
        and latest_purchase_orders.recency_rank = 1
    left join purchase_order_summary
        on products.sku_id = purchase_order_summary.sku_id
    left join first_prices
        on products.sku_id = first_prices.sku_id

),

final as (

    select
        *,
        {{ round_to('list_price - unit_cost') }} as unit_margin,
        case when list_price > 0 then (list_price - unit_cost) / list_price end as margin_pct
    from joined

)

select * from final
